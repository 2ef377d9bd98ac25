"""The command line: a thin Typer shell over functions that take and return plain data.

Nothing here imports TensorFlow at module level, so ``--help``, ``render``, ``import`` and
``compose`` answer at once; ``train`` and ``compare`` import it when they run.
"""

from __future__ import annotations

import enum
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from melodygen import encoding, midi, notation, plots, store
from melodygen.errors import MelodygenError
from melodygen.files import atomic_directory, check_directory_target, read_bytes, write_atomic
from melodygen.generation import continue_melody, predict_song, sampler
from melodygen.models import DEFAULT_UNITS, DEFAULT_WINDOW, SPECS, TrainConfig

INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C (128 + SIGINT)
LOG_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


def _stderr() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def _error(message: str) -> None:
    _stderr().print(f"[bold red]error:[/] {escape(message)}")


class _Group(TyperGroup):
    """Turns every failure into one line on stderr and the contract's exit status."""

    def main(
        self,
        args: Any = None,
        prog_name: Any = None,
        complete_var: Any = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as e:
            print(e.format_message(), file=sys.stderr)
            code = e.exit_code
        except ClickException as e:  # usage: unknown option, missing argument, bad value
            _error(e.format_message())
            code = e.exit_code
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MelodygenError as e:
            _error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            _error("interrupted; nothing was written")
            raise typer.Exit(INTERRUPTED) from None
        except (ClickException, typer.Exit, typer.Abort):
            raise
        except OSError as e:  # the disk filled up, a file vanished: not the user's input
            where = f"{e.filename}: " if e.filename else ""
            _error(f"{where}{e.strerror or e}")
            raise typer.Exit(1) from None
        except Exception as e:
            if os.environ.get("MELODYGEN_DEBUG"):
                raise
            _error(f"unexpected {type(e).__name__}: {e} (set MELODYGEN_DEBUG=1 for a traceback)")
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Learn melodies written as text and compose MIDI (after the Keras RNN chapter).",
)

Tempo = Annotated[
    float | None,
    typer.Option(min=1, max=1000, help="Quarter notes per minute (default: the song's, or 120)."),
]
Program = Annotated[
    int | None,
    typer.Option(min=0, max=127, help="General MIDI program (default: the song's, or 0 = piano)."),
]


@app.command()
def render(
    song: Annotated[Path, typer.Argument(help="A song file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The MIDI file to write.")],
    tempo: Tempo = None,
    program: Program = None,
) -> None:
    """Write a song file as a MIDI file."""
    parsed = notation.read_song(song)
    write_atomic(out, midi.song_to_midi(parsed, tempo=tempo, program=program))
    _stderr().print(f"wrote {out}: {len(parsed.notes)} notes and rests")


@app.command("import")
def import_(
    midi_file: Annotated[Path, typer.Argument(metavar="MIDI", help="A monophonic MIDI file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The song file to write.")],
) -> None:
    """Read a MIDI file's melody into a song file (a polyphonic file keeps its top line)."""
    song = midi.midi_to_song(read_bytes(midi_file, "MIDI file"), str(midi_file), midi_file.stem)
    write_atomic(out, notation.format_song(song))
    _stderr().print(f"wrote {out}: {len(song.notes)} notes and rests")


ModelName = enum.Enum("ModelName", {name: name for name in SPECS}, type=str)  # --model choices
DEFAULT_MODEL = ModelName("stateful")
Songs = Annotated[list[Path], typer.Argument(help="Song files, or directories of *.txt songs.")]
Seed = Annotated[int, typer.Option(help="Random seed: initial weights and shuffling.")]
Epochs = Annotated[int, typer.Option(min=1, help="Training epochs (the chapter's 2000).")]
Units = Annotated[int, typer.Option(min=1, max=4096, help="Dense/LSTM units (the chapter's 128).")]
Window = Annotated[int, typer.Option(min=1, max=256, help="Notes in, the next out (chapter: 4).")]
ModelDir = Annotated[
    Path | None, typer.Option("--model", help="A model directory (default: the latest trained).")
]
WRONG = "bold white on red"  # the chapter boxes wrong notes in red


def _read_all(paths: list[Path]) -> list[notation.Song]:
    return [song for path in paths for song in notation.read_songs(path)]


def _train(songs: list[notation.Song], config, label: str):
    """Train with a progress bar; returns training.Trained."""
    console = _stderr()
    with console.status("loading TensorFlow..."):
        from melodygen import training
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "epochs  loss {task.fields[loss]:.4f}  training accuracy {task.fields[accuracy]:.0%}"
        ),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(label, total=config.epochs, loss=float("nan"), accuracy=0.0)

        logged = [-LOG_EVERY]  # seconds of training when a plain line was last logged

        def on_epochs(history) -> None:
            loss, accuracy = history.loss[-1], history.accuracy[-1]
            progress.update(task, completed=history.epochs_run, loss=loss, accuracy=accuracy)
            if not console.is_terminal and history.seconds - logged[0] >= LOG_EVERY:
                logged[0] = history.seconds  # a log file gets a line now and then, not a bar
                console.print(f"{label}: epoch {history.epochs_run}/{config.epochs} "
                              f"loss {loss:.4f} accuracy {accuracy:.0%}")  # fmt: skip

        trained = training.train(songs, config, on_epochs)
        progress.update(task, total=trained.history.epochs_run)
    return trained


def _results_table(reports: list[dict]) -> Table:
    table = Table(title="melodygen: the chapter's comparison" if len(reports) > 1 else None)
    for column in ("model", "epochs", "accuracy", "one-step", "full song", "seconds"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in reports:
        full = (
            "the whole song"
            if r["full_song_reproduced"]
            else f"{r['full_song_correct']} of {r['predictions']}"
        )
        table.add_row(
            r["model"],
            str(r["epochs_run"]),
            f"{r['accuracy']:.2%}",
            f"{r['one_step_correct']} of {r['predictions']}",
            full,
            f"{r['train_seconds']:.1f}",
        )
    return table


@app.command()
def train(
    songs: Songs,
    model: Annotated[
        ModelName, typer.Option(help="Which of the chapter's models.")
    ] = DEFAULT_MODEL,
    window: Window = DEFAULT_WINDOW,
    epochs: Epochs = 2000,
    units: Units = DEFAULT_UNITS,
    seed: Seed = 5,
    out: Annotated[
        Path | None, typer.Option(help="Model directory (default: outputs/SONG-MODEL).")
    ] = None,
    until_perfect: Annotated[
        bool, typer.Option(help="Stop once every window and the full song are right.")
    ] = False,
) -> None:
    """Train one of the chapter's models on songs and save it as the latest model."""
    parsed = _read_all(songs)
    encoding.require_windows(parsed, window)
    config = TrainConfig(model.value, window, units, epochs, seed, until_perfect)
    out = out or store.default_dir(parsed, model.value)
    check_directory_target(out)
    check_directory_target(store.OUTPUTS)  # where the latest model is recorded
    trained = _train(parsed, config, model.value)
    report = store.save_model(out, trained, parsed, trained.history.seconds)
    store.record_latest(out)
    console = Console(soft_wrap=True)
    console.print(_results_table([report]))
    if trained.history.perfect_at is not None:
        console.print(f"perfect after {trained.history.perfect_at} epochs")
    console.print(f"saved {out}/ (now the latest model)")


def _aligned(console: Console, truth: list[str], rows: dict[str, list[str]], window: int) -> None:
    """The song and each prediction in columns, wrong notes in red, the given window dimmed."""
    width = max(len(t) for tokens in (truth, *rows.values()) for t in tokens) + 1
    label = max(len(name) for name in ("song", *rows)) + 2
    per_line = max(4, (console.width - label) // width)
    for start in range(0, len(truth), per_line):
        line = Text("song".ljust(label), style="bold")
        for i, token in enumerate(truth[start : start + per_line], start):
            line.append(token.ljust(width), style="dim" if i < window else "")
        console.print(line)
        for name, tokens in rows.items():
            line = Text(name.ljust(label))
            for i, token in enumerate(tokens[start : start + per_line], start):
                given, wrong = i < window, i >= len(truth) or token != truth[i]
                line.append(token, style="dim" if given else WRONG if wrong else "green")
                line.append(" " * (width - len(token)))
            console.print(line)
        console.print()


@app.command()
def evaluate(
    song: Annotated[
        Path | None, typer.Argument(help="A song (default: the songs the model learned).")
    ] = None,
    model: ModelDir = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: MODEL/evaluate).")
    ] = None,
) -> None:
    """Predict a song one step at a time and whole; mark the wrong notes; write MIDI."""
    loaded = store.load_model(model)
    songs = notation.read_songs(song) if song else loaded.songs
    console = Console(soft_wrap=True)
    predictions, files = [], {}
    for s in songs:
        indices = [loaded.vocab.index(t) for t in s.tokens]
        encoding.require_windows([s], loaded.window, "evaluate")
        p = predict_song(loaded.forward, loaded.table, indices, loaded.window)
        predictions.append(p)
        rows = {
            "one-step": [loaded.vocab.tokens[i] for i in p.one_step],
            "full song": [loaded.vocab.tokens[i] for i in p.full_song],
        }
        console.print(
            f"[bold]{escape(s.title or s.name)}[/]: one-step {p.correct('one_step')} of "
            f"{p.predictions} right, full song {p.correct('full_song')} of {p.predictions}"
        )
        _aligned(console, s.tokens, rows, loaded.window)
        title = f"{loaded.spec.name} on {s.name}"
        files[f"{s.name}.png"] = plots.prediction_plot(s.tokens, rows, loaded.window, title)
    files |= store.prediction_files(songs, predictions, loaded.vocab)
    out = out or loaded.path / "evaluate"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_atomic(out / name, data)
    console.print(f"wrote {', '.join(sorted(files))} to {out}/")


@app.command()
def compare(
    song: Annotated[Path, typer.Argument(help="A song file (or a directory of songs).")],
    epochs: Epochs = 2000,
    seed: Seed = 5,
    units: Units = DEFAULT_UNITS,
    window: Window = DEFAULT_WINDOW,
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: outputs/compare-SONG).")
    ] = None,
) -> None:
    """Train the chapter's four models on one song and compare them, as the chapter does."""
    songs = notation.read_songs(song)
    encoding.require_windows(songs, window)
    out = out or store.OUTPUTS / f"compare-{songs[0].name}"
    reports, curves = [], {}
    with atomic_directory(out) as tmp:
        for name in SPECS:
            trained = _train(songs, TrainConfig(name, window, units, epochs, seed), name)
            reports.append(store.save_model(tmp / name, trained, songs, trained.history.seconds))
            curves[name] = (trained.history.loss, trained.history.accuracy)
        title = f"the four models on {songs[0].name}"
        (tmp / "compare.png").write_bytes(plots.loss_plot(curves, title))
        summary = [{k: v for k, v in r.items() if not k.endswith("_history")} for r in reports]
        (tmp / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    console = Console(soft_wrap=True)
    console.print(_results_table(reports))
    console.print(f"wrote {out}/: a model directory per model, compare.png, compare.json")


@app.command()
def compose(
    seed: Annotated[str, typer.Option("--seed", help="The notes to continue, e.g. g8,e8,e4,f8.")],
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Write the melody as MIDI.")
    ] = None,
    model: ModelDir = None,
    length: Annotated[int, typer.Option(min=0, help="Notes to add after the seed.")] = 50,
    temperature: Annotated[
        float, typer.Option(min=0, help="0 = the chapter's argmax; above 0 samples.")
    ] = 0.0,
    top_k: Annotated[int, typer.Option(min=0, help="Sample from the k likeliest (0 = all).")] = 0,
    random_seed: Annotated[
        int | None, typer.Option(help="Makes sampling reproducible (default: random).")
    ] = None,
    tempo: Tempo = None,
    program: Program = None,
) -> None:
    """Continue a seed with a trained model; print the tokens, write MIDI with -o."""
    loaded = store.load_model(model)
    notes = notation.parse_tokens(seed, source="--seed")
    seed_indices = [loaded.vocab.index(n.token) for n in notes]
    if len(seed_indices) < loaded.window:
        raise MelodygenError(
            f"--seed has {len(seed_indices)} notes; this model needs at least {loaded.window} "
            f"(allowed tokens: {' '.join(loaded.vocab.tokens)})"
        )
    if temperature > 0 and random_seed is None:
        random_seed = secrets.randbelow(2**31)
        _stderr().print(f"random seed {random_seed} (pass --random-seed {random_seed} to repeat)")
    pick = sampler(temperature, top_k, random_seed)
    indices = continue_melody(
        loaded.forward, loaded.table, seed_indices, length, loaded.window, pick
    )
    tokens = [loaded.vocab.tokens[i] for i in indices]
    print(" ".join(tokens))
    if out is not None:
        first = loaded.songs[0] if loaded.songs else notation.Song(())
        song = notation.Song(
            tuple(notation.parse_token(t) for t in tokens),
            name=out.stem,
            title=f"composed by melodygen ({loaded.spec.name})",
            tempo=first.tempo,
            time=first.time,
            program=first.program,
        )
        write_atomic(out, midi.song_to_midi(song, tempo=tempo, program=program))
        _stderr().print(f"wrote {out}: {len(tokens)} notes")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: returns the exit status instead of raising SystemExit."""
    return typer.main.get_command(app).main(argv, prog_name="melodygen", standalone_mode=False)
