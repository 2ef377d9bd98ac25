"""The command line (docs/cli.md): options, one library call per command, rendering.

Only this module prints, names flags and chooses exit statuses. Nothing here imports TensorFlow
at module level, so ``--help``, ``render``, ``import`` and ``compose`` answer at once.
"""

from __future__ import annotations

import enum
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from melodygen import __version__, tasks
from melodygen.audio import AudioUnavailable
from melodygen.errors import BadInput, Interrupted, MelodygenError
from melodygen.evaluation import Measures, Report
from melodygen.generation import Limits, Sampling
from melodygen.models import DEFAULT_ORDER, DEFAULT_UNITS, DEFAULT_WINDOW, KINDS

INTERRUPTED = 128  # the shell's status for a command stopped by a signal is 128 + its number
LOG_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal
# Library parameters as the user typed them, for error messages.
FLAGS = {"seed": "--seed", "temperature": "--temperature", "top_k": "--top-k",
         "top_p": "--top-p", "beam": "--beam", "count": "--count", "program": "--program",
         "time": "--time", "soundfont": "--soundfont", "transpose": "--transpose",
         "devices": "--devices", "valid": "--valid", "track": "--track",
         "grid": "--grid"}  # fmt: skip


def _stderr() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def _stdout() -> Console:
    return Console(soft_wrap=True, highlight=False)


def _error(message: str) -> None:
    _stderr().print(f"[bold red]error:[/] {escape(message)}")


def _message(e: MelodygenError) -> str:
    if e.parameter in FLAGS:
        return f"{FLAGS[e.parameter]}: {e}"
    if e.parameter == "force":
        return f"{e}: pass --force to overwrite it"
    return str(e)


def _terminate(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


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
        previous = signal.signal(signal.SIGTERM, _terminate)  # stop as cleanly as on Ctrl-C
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as e:
            print(e.format_message(), file=sys.stderr)
            code = e.exit_code
        except ClickException as e:  # usage: unknown option, missing argument, bad value
            _error(e.format_message())
            code = e.exit_code
        finally:
            signal.signal(signal.SIGTERM, previous)
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BadInput as e:
            _error(_message(e))
            raise typer.Exit(2) from None
        except MelodygenError as e:  # SystemFailure
            _error(_message(e))
            raise typer.Exit(1) from None
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM as Interrupted
            _error("interrupted; nothing was written")
            number = e.signal_number if isinstance(e, Interrupted) else signal.SIGINT
            raise typer.Exit(INTERRUPTED + number) from None
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


def _version(value: bool) -> None:
    if value:
        print(f"melodygen {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Learn melodies written as text and compose MIDI (after the Keras RNN chapter). "
    "The notation and every command are described in docs/notation.md and docs/cli.md.",
)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass


Tempo = Annotated[
    float | None,
    typer.Option(min=1, max=1000, help="Quarter notes per minute (default: the song's, or 120)."),
]
Program = Annotated[
    str | None,
    typer.Option(
        help="General MIDI program: a number or a name such as flute (default: the song's, "
        "or 0 = piano)."
    ),
]
ModelName = enum.Enum("ModelName", {name: name for name in KINDS}, type=str)  # --model
DEFAULT_MODEL = ModelName("stateful")
Songs = Annotated[list[Path], typer.Argument(help="Song files, or directories of *.txt songs.")]
RandomSeed = Annotated[
    int, typer.Option("--random-seed", help="Random seed: initial weights and shuffling.")
]
SeedAlias = Annotated[int | None, typer.Option("--seed", hidden=True)]  # before --random-seed
Epochs = Annotated[int, typer.Option(min=1, help="Training epochs (the chapter's 2000).")]
Units = Annotated[int, typer.Option(min=1, max=4096, help="Dense/LSTM units (the chapter's 128).")]
Window = Annotated[int, typer.Option(min=1, max=256, help="Notes in, the next out (chapter: 4).")]
ModelDir = Annotated[
    Path | None, typer.Option("--model", help="A model directory (default: the latest trained).")
]
WRONG = "bold white on red"  # the chapter boxes wrong notes in red
WRONG_MARK = "*"  # and a character, for output without colour


@app.command()
def render(
    song: Annotated[Path, typer.Argument(help="A song file.")],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="The MIDI file (.mid), or MIDI and audio (.wav).")
    ],
    tempo: Tempo = None,
    program: Program = None,
    wav: Annotated[bool, typer.Option(help="Also write audio (.wav) through FluidSynth.")] = False,
    soundfont: Annotated[
        Path | None, typer.Option(help="A SoundFont for --wav (default: $MELODYGEN_SOUNDFONT).")
    ] = None,
) -> None:
    """Write a song file as a MIDI file (and as audio)."""
    parsed, files, problem = tasks.render(
        song, tasks.Outputs(out, wav, soundfont=soundfont), tempo, program
    )
    names = ", ".join(escape(str(f)) for f in files)
    _stderr().print(f"wrote {names}: {len(parsed.notes)} notes and rests")
    if problem:
        raise AudioUnavailable(problem)


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="A MIDI, ABC or MusicXML file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The song file to write.")],
    track: Annotated[
        str | None,
        typer.Option(
            help="The track to take the melody from: its number (from 1) or part of its name. "
            "Default: the part that looks most like a melody.",
        ),
    ] = None,
    grid: Annotated[
        int | None,
        typer.Option(
            help="Snap onsets to this note value: 4, 8, 16, 32, or 12, 24, 48 for triplets. "
            "Default: the coarsest grid that fits the file's onsets.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite the song file if it exists.")] = False,
) -> None:
    """Read a file's melody into a song file: the highest note at each onset of the melody's
    part, quantized, spelled in its key."""
    imported = tasks.import_song(path, out, force, track, grid)
    notes = len(imported.song.notes)
    _stderr().print(f"wrote {escape(str(out))}: {notes} notes and rests; {imported.summary()}")


class _Progress:
    """Training progress: a bar on a terminal, a line every LOG_EVERY seconds otherwise. It
    says "compiling" until the first epochs are done, then the loss and the accuracy of the
    epoch as the weights changed (the final table's accuracy is measured afterwards)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs  {task.fields[status]}"),
            TimeElapsedColumn(),
        )
        self.bar = Progress(*columns, console=console, disable=not console.is_terminal)

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def task(self, label: str, epochs: int):
        task = None
        logged = [-LOG_EVERY]  # seconds of training when a plain line was last printed

        def on_epochs(history) -> None:
            nonlocal task
            if task is None:  # training starts: TensorFlow traces and compiles first
                task = self.bar.add_task(label, total=epochs, status="compiling...")
                if not self.console.is_terminal:
                    self.console.print(f"{label}: compiling...")
            if not history.epochs_run:
                return
            status = f"loss {history.loss[-1]:.4f}  epoch accuracy {history.accuracy[-1]:.0%}"
            if history.valid_loss:
                status += (
                    f"  held-out: loss {history.valid_loss[-1]:.4f} accuracy "
                    f"{history.valid_accuracy[-1]:.0%} {history.valid_bits[-1]:.3f} bits/token"
                )
            self.bar.update(task, completed=history.epochs_run, status=status)
            done = history.epochs_run >= epochs or history.perfect_at is not None
            if not self.console.is_terminal and (done or history.seconds - logged[0] >= LOG_EVERY):
                logged[0] = history.seconds
                self.console.print(f"{label}: epoch {history.epochs_run}/{epochs} {status}")

        return on_epochs


def _results_table(reports: list[Report]) -> Table:
    title = "melodygen: the chapter's comparison" if len(reports) > 1 else None
    table = Table(title=title, box=box.MINIMAL_HEAVY_HEAD, pad_edge=False, collapse_padding=True)
    for column in ("model", "epochs", "accuracy", "one-step", "full song", "bits/token", "seconds"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for r in reports:
        m = r.training
        full = (
            f"all {m.predictions}"
            if m.full_song_reproduced
            else f"{m.full_song_correct} of {m.predictions}"
        )
        table.add_row(
            r.model,
            str(r.epochs_run),
            f"{m.accuracy:.2%}",
            f"{m.one_step_correct} of {m.predictions}",
            full,
            f"{m.bits_per_token:.3f}",
            f"{r.train_seconds:.1f}",
        )
    return table


def _measures_table(rows: dict[str, Measures]) -> Table:
    """The measures (docs/cli.md) of some groups of songs, one row each."""
    table = Table(box=box.MINIMAL_HEAVY_HEAD, pad_edge=False, collapse_padding=True)
    columns = ("songs", "n", "tokens", "accuracy", "bits/token", "pitch bits/note", "dur. bits")
    for column in columns:
        table.add_column(column, justify="left" if column == "songs" else "right", no_wrap=True)
    for name, m in rows.items():
        table.add_row(
            name,
            f"{m.songs:,}",
            f"{m.tokens:,}",
            f"{m.accuracy:.2%}",
            f"{m.bits_per_token:.3f}",
            f"{m.pitch_bits_per_note:.3f}",
            f"{m.duration_bits_per_token:.3f}",
        )
    return table


def _skipped(skipped: list, total: int) -> None:
    """One warning per song left out (ten at most), then the summary line."""
    if not skipped:
        return
    console = _stderr()
    for s in skipped[:10]:
        console.print(f"[yellow]warning:[/] skipped {escape(s.path)}: {escape(s.reason)}")
    if len(skipped) > 10:
        console.print(f"[yellow]warning:[/] and {len(skipped) - 10} more")
    console.print(
        f"used {total - len(skipped):,} of {total:,} songs; skipped {len(skipped):,}, "
        "listed in report.json"
    )


Valid = Annotated[
    float | None,
    typer.Option(
        min=0,
        max=0.5,
        help="Share of songs held out to measure the model (default 0.1 from 20 songs on, else 0);"
        " a song is held out when the CRC-32 of its file name is 0 mod round(1/VALID).",
    ),
]
Patience = Annotated[
    int | None,
    typer.Option(min=1, help="Stop after N epochs without a better held-out loss; keep the best."),
]
Batch = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=4096,
        help="Windows per step (stateful models: songs side by side); default: the chapter's.",
    ),
]


def _transpose(text: str | None) -> tuple[int, int] | None:
    """--transpose LOW..HIGH (semitones, e.g. -5..6); 0 for none."""
    if text is None:
        return None
    if text.strip() == "0":
        return (0, 0)
    low, sep, high = text.partition("..")
    try:
        if not sep or int(low) > int(high):
            raise ValueError
        return int(low), int(high)
    except ValueError:
        message = f"expected LOW..HIGH semitones such as -5..6, not {text!r}"
        raise BadInput(message, "transpose") from None


@app.command()
def train(
    songs: Songs,
    model: Annotated[
        ModelName | None,
        typer.Option(help="The model kind (default: song-rnn from 20 songs on, else stateful)."),
    ] = None,
    window: Window = DEFAULT_WINDOW,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Epochs at most (the chapter's 2000; song-rnn 100).")
    ] = None,
    units: Annotated[
        int | None,
        typer.Option(min=1, max=4096, help="LSTM/Dense units (the chapter's 128; song-rnn 256)."),
    ] = None,
    random_seed: RandomSeed = 5,
    seed: SeedAlias = None,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Model directory (default: outputs/NAME-MODEL)."),
    ] = None,
    until_perfect: Annotated[
        bool, typer.Option(help="Stop once every window and the full song are right.")
    ] = False,
    valid: Valid = None,
    patience: Patience = None,
    min_delta: Annotated[
        float | None,
        typer.Option(
            min=0, help="A held-out loss this much lower counts as better (song-rnn: 0.002)."
        ),
    ] = None,
    batch: Batch = None,
    order: Annotated[
        int, typer.Option(min=1, max=64, help="ngram: the longest n-gram counted.")
    ] = DEFAULT_ORDER,
    layers: Annotated[
        int | None, typer.Option(min=1, max=8, help="song-rnn: LSTM layers (2).")
    ] = None,
    embedding: Annotated[
        int | None, typer.Option(min=2, max=1024, help="song-rnn: input width (64).")
    ] = None,
    dropout: Annotated[
        float | None, typer.Option(min=0, max=0.9, help="song-rnn: dropout (0.3).")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(min=0, help="Adam's (chapter's kinds 0.001; song-rnn 0.01).")
    ] = None,
    decay: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="song-rnn: the learning rate's factor per epoch (0.75)."),
    ] = None,
    transpose: Annotated[
        str | None,
        typer.Option(help="song-rnn: move songs by LOW..HIGH semitones (-5..6; 0: none)."),
    ] = None,
    devices: Annotated[
        int | None,
        typer.Option(min=1, help="song-rnn: replicas (GPUs, else CPU parts; default: all GPUs)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Stop at the first unusable song in a directory.")
    ] = False,
) -> None:
    """Train a model on songs and save it as the latest model."""
    options = {
        "model": model.value if model else None,
        "window": window,
        "units": units,
        "epochs": epochs,
        "seed": seed or random_seed,
        "until_perfect": until_perfect,
        "batch": batch,
        "patience": patience,
        "min_delta": min_delta,
        "order": order,
        "layers": layers,
        "embedding": embedding,
        "dropout": dropout,
        "learning_rate": learning_rate,
        "decay": decay,
        "transpose": _transpose(transpose),
        "devices": devices,
    }
    given = {k: v for k, v in options.items() if v is not None}
    with _Progress(_stderr()) as progress:
        trained = tasks.train(songs, given, out, progress.task, valid, strict, _skipped)
    report = trained.report
    console = _stdout()
    console.print(_results_table([report]))
    groups = {"training": report.training}
    if report.validation:
        groups["held out"] = report.validation
    console.print(_measures_table(groups))
    if report.perfect_at is not None:
        console.print(f"perfect after {report.perfect_at} epochs")
    if report.best_epoch is not None:
        console.print(f"kept the weights of epoch {report.best_epoch} (best held-out loss)")
    if report.epochs_run:
        epoch = report.seconds_per_epoch
        took = f"{epoch:.2f} s" if epoch >= 0.1 else f"{epoch * 1000:.1f} ms"
        console.print(
            f"{report.tokens_per_second:,.0f} training tokens per second "
            f"({took} per epoch, compiling excluded)"
        )
    console.print(f"saved {escape(str(trained.path))}/ (now the latest model)")


def _aligned(console: Console, truth: list[str], rows: dict[str, list[str]], window: int) -> None:
    """The song and each prediction in columns, wrong notes in red and marked with
    WRONG_MARK, the given window dimmed."""
    width = max(len(t) for tokens in (truth, *rows.values()) for t in tokens) + 2
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
                style = "dim" if given else WRONG if wrong else "green"
                line.append(token, style=style)
                mark = WRONG_MARK if wrong and not given else ""
                line.append(mark + " " * (width - len(token) - len(mark)))
            console.print(line)
        console.print()


def _measures_line(m: Measures) -> str:
    return (
        f"one-step {m.one_step_correct} of {m.predictions} right, full song "
        f"{m.full_song_correct} of {m.predictions}; {m.bits_per_token:.3f} bits per token"
    )


@app.command()
def evaluate(
    songs: Annotated[
        list[Path] | None,
        typer.Argument(help="Songs or directories (default: the songs the model learned)."),
    ] = None,
    model: ModelDir = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: MODEL/evaluate).")
    ] = None,
    held_out: Annotated[
        bool, typer.Option(help="Only the given songs the model held out in training.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the measures as JSON.")] = False,
    each_song: Annotated[
        bool, typer.Option("--songs", help="Print each song's predictions, wrong notes marked.")
    ] = False,
    png: Annotated[bool, typer.Option(help="Also write a piano roll of each song.")] = False,
) -> None:
    """Measure a model on songs; predict them one step at a time and whole; write MIDI."""
    result = tasks.evaluate_songs(model, songs or [], out, held_out, png)
    _stderr().print(f"model {escape(str(result.loaded.path))}")
    _skipped(result.skipped, len(result.evaluation.songs) + len(result.skipped))
    evaluation = result.evaluation
    if as_json:
        print(json.dumps({
            "model": str(result.loaded.path),
            "measures": evaluation.overall.to_json(),
            "songs": [{"name": s.song.name, **s.measures.to_json()} for s in evaluation.songs],
        }, indent=2))  # fmt: skip
        return
    vocab = result.loaded.model.vocab
    console = _stdout()
    if each_song or len(evaluation.songs) == 1:
        console.print(f"wrong notes are red and marked {WRONG_MARK}; the given window is dimmed\n")
        for s in evaluation.songs:
            title = escape(s.song.title or s.song.name)
            console.print(f"[bold]{title}[/]: {_measures_line(s.measures)}")
            rows = {
                "one-step": s.tokens("one_step", vocab),
                "full song": s.tokens("full_song", vocab),
            }
            _aligned(console, s.song.tokens, rows, s.window)
    console.print(_measures_table({"songs" if not held_out else "held out": evaluation.overall}))
    console.print(f"wrote {', '.join(result.written[:6])}" + (
        f" and {len(result.written) - 6} more" if len(result.written) > 6 else ""
    ) + f" to {escape(str(result.out))}/")  # fmt: skip


@app.command()
def compare(
    songs: Annotated[list[Path], typer.Argument(help="A song file (or a directory of songs).")],
    epochs: Epochs = 2000,
    random_seed: RandomSeed = 5,
    seed: SeedAlias = None,
    units: Units = DEFAULT_UNITS,
    window: Window = DEFAULT_WINDOW,
    valid: Valid = None,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Where to write (default: outputs/compare-SONG)."),
    ] = None,
) -> None:
    """Train the chapter's four models on one song and compare them, as the chapter does."""
    options = {"window": window, "units": units, "epochs": epochs, "seed": seed or random_seed}
    with _Progress(_stderr()) as progress:
        compared = tasks.compare(songs, options, out, progress.task, valid)
    console = _stdout()
    console.print(_results_table(compared.reports))
    console.print(
        f"wrote {escape(str(compared.path))}/: a model directory per model, compare.png, "
        "compare.json"
    )


@app.command()
def compose(
    seed: Annotated[
        str,
        typer.Option(
            "--seed",
            help="The notes to continue, e.g. g8,e8,e4,f8 (default: none, for a model that "
            "starts tunes: song-rnn, ngram).",
        ),
    ] = "",
    seed_file: Annotated[
        Path | None, typer.Option(help="Take the seed from a song or MIDI file.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Write MIDI (.mid), or MIDI and audio (.wav)."),
    ] = None,
    count: Annotated[
        int, typer.Option("-n", "--count", min=1, help="Tunes to write: OUT-1.mid, OUT-2.mid...")
    ] = 1,
    model: ModelDir = None,
    length: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Most notes to add after the seed (default 50; up to 1,000 for a model that "
            "ends tunes; none with --bars).",
        ),
    ] = None,
    bars: Annotated[
        int, typer.Option(min=0, help="Stop at this many bar lines after the seed.")
    ] = 0,
    end: Annotated[
        bool, typer.Option("--end/--no-end", help="Stop where the model ends a tune.")
    ] = True,
    temperature: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="0 = the chapter's argmax; above 0 samples (default: 0 for the chapter's "
            "models, 1 for song-rnn and ngram).",
        ),
    ] = None,
    top_k: Annotated[int, typer.Option(min=0, help="Sample from the k likeliest (0 = all).")] = 0,
    top_p: Annotated[
        float, typer.Option(min=0, max=1, help="Sample from the likeliest holding this share.")
    ] = 1.0,
    beam: Annotated[
        int, typer.Option(min=0, help="Search this many continuations for the likeliest.")
    ] = 0,
    random_seed: Annotated[
        int | None, typer.Option(help="Makes sampling reproducible (default: random).")
    ] = None,
    max_copy: Annotated[
        int | None,
        typer.Option(min=0, help="Resample a tune that copies a longer run of a training song."),
    ] = None,
    tempo: Tempo = None,
    program: Program = None,
    time: Annotated[
        str | None, typer.Option(help="Time signature, e.g. 3/4 (default: the training songs').")
    ] = None,
    wav: Annotated[bool, typer.Option(help="Also write audio (.wav) through FluidSynth.")] = False,
    png: Annotated[bool, typer.Option(help="Also write a piano roll (.png).")] = False,
    soundfont: Annotated[
        Path | None, typer.Option(help="A SoundFont for --wav (default: $MELODYGEN_SOUNDFONT).")
    ] = None,
) -> None:
    """Compose tunes with a trained model (continuing a seed, if given): print the tokens,
    write MIDI with -o."""
    limits = Limits(length=length, bars=bars, stop_at_end=end)
    composition = tasks.compose(
        model,
        tasks.read_seed(seed, seed_file),
        count,
        Sampling(temperature, top_k, top_p, beam),
        random_seed,
        limits,
        tasks.Outputs(out, wav, png, soundfont),
        {"tempo": tempo, "program": program, "time": time},
        max_copy,
    )
    console = _stderr()
    console.print(f"model {escape(str(composition.loaded.path))}")
    if random_seed is None and composition.random_seed is not None:
        drawn = composition.random_seed
        console.print(f"random seed {drawn} (pass --random-seed {drawn} to repeat)")
    for tune in composition.tunes:
        print(" ".join(tune.song.tokens))
        console.print(escape(_tune_line(tune, count, max_copy)))
    if composition.audio:
        raise AudioUnavailable(composition.audio)


def _tune_line(tune: tasks.Tune, count: int, max_copy: int | None) -> str:
    name = tune.files[0].name if tune.files else f"tune {tune.number}"
    added = len(tune.song.notes) - tune.seed
    copied = f"longest copied run {tune.copied.length} tokens"
    if tune.copied_from:
        copied += f" (from {tune.copied_from})"
    if max_copy is not None and tune.copied.length > max_copy:
        copied += f", over --max-copy {max_copy} after {tune.tries} samplings"
    elif tune.tries > 1:
        copied += f", after {tune.tries} samplings"
    s = tune.style
    figures = (f"range {s.range}, {s.in_scale:.0%} in {s.scale}, distance from the training "
               f"songs: pitch classes {s.pitch_class_distance:.2f}, intervals "
               f"{s.interval_distance:.2f}")  # fmt: skip
    also = f"; wrote {', '.join(p.name for p in tune.files[1:])}" if tune.files[1:] else ""
    return f"{name}: {added} notes added; {copied}; {figures}{also}"


corpus_app = typer.Typer(help="Write a corpus of songs to learn a style from.")
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("essen")
def corpus_essen(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="A new or empty directory.")],
) -> None:
    """Write the Essen folk songs that music21 ships as song files (needs music21)."""
    console = _stderr()
    columns = (TextColumn("Essen"), BarColumn(), MofNCompleteColumn(), TextColumn("ABC files"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("essen", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        export = tasks.write_corpus(directory, progress)
    skipped = sum(export.skipped.values()) + sum(export.failed.values())
    reasons = ", ".join(f"{n} {why}" for why, n in {**export.skipped, **export.failed}.items())
    _stdout().print(
        f"wrote {export.written:,} songs to {escape(str(directory))}/; skipped {skipped:,} "
        f"tunes the notation cannot spell yet" + (f" ({reasons})" if reasons else "")
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point: returns the exit status instead of raising SystemExit."""
    return typer.main.get_command(app).main(argv, prog_name="melodygen", standalone_mode=False)
