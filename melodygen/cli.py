"""The command line (docs/cli.md): options, one library call per command, rendering.

Only this module prints, names flags and chooses exit statuses. Nothing here imports TensorFlow
at module level, so ``--help``, ``render``, ``import`` and ``compose`` answer at once.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable
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

from melodygen import __version__, kinds, store, tasks
from melodygen.audio import AudioUnavailable
from melodygen.corpus import DEFAULT_VALID, MIN_SPLIT_SONGS
from melodygen.errors import BadInput, Interrupted, MelodygenError, interruption
from melodygen.evaluation import Measures, Rhythm
from melodygen.generation import CHAPTER_LENGTH, LONGEST, Limits, Sampling
from melodygen.kinds import KINDS, Kind, Setting, Spec
from melodygen.kinds.base import SettingError
from melodygen.notation import format_body
from melodygen.store import Report
from melodygen.theory import key_for_people
from melodygen.training import DEFAULT_SEED

INTERRUPTED = 128  # the shell's status for a command stopped by a signal is 128 + its number
LOG_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal
# Library parameters as the user typed them, for error messages; the kinds' settings too.
FLAGS = {"seed": "--seed", "temperature": "--temperature", "top_k": "--top-k",
         "top_p": "--top-p", "beam": "--beam", "count": "--count", "program": "--program",
         "time": "--time", "soundfont": "--soundfont", "valid": "--valid", "track": "--track",
         "grid": "--grid", "model": "--model", "key": "--key", "folds": "--folds",
         "within-tune": "--within-tune", "from": "--from", "resume": "--resume", "wav": "--wav",
         "png": "--png", "txt": "--txt", "musicxml": "--musicxml", "abc": "--abc",
         "score": "--score"}  # fmt: skip
SETTINGS = {s.name: s for kind in KINDS.values() for s in kind.spec.settings()}  # by name
FLAGS |= {name: s.flag for name, s in SETTINGS.items()}


def _stderr() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def _stdout() -> Console:
    return Console(soft_wrap=True, highlight=False)


def _print_table(console: Console, table: Table) -> None:
    """A table whole: on a pipe or in a log as wide as it needs, not cut at 80 columns."""
    if not console.is_terminal:
        needed = console.measure(table, options=console.options.update_width(10_000)).maximum
        if needed > console.width:  # print can narrow a console, not widen it
            console = Console(file=console.file, width=needed, highlight=False)
    console.print(table)


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
            raise _stopped(e) from None
        except (ClickException, typer.Exit, typer.Abort):
            raise
        except OSError as e:  # the disk filled up, a file vanished: not the user's input
            where = f"{e.filename}: " if e.filename else ""
            _error(f"{where}{e.strerror or e}")
            raise typer.Exit(1) from None
        except Exception as e:
            # A signal that lands while C code (numpy, TensorFlow) calls back into Python
            # surfaces as a SystemError caused by the KeyboardInterrupt
            if (stop := interruption(e)) is not None:
                raise _stopped(stop) from None
            if os.environ.get("MELODYGEN_DEBUG"):
                raise
            _error(f"unexpected {type(e).__name__}: {e} (set MELODYGEN_DEBUG=1 for a traceback)")
            raise typer.Exit(1) from None


def _stopped(e: KeyboardInterrupt) -> typer.Exit:
    """Ctrl-C or SIGTERM: one line, and the shell's status for a command stopped by it."""
    _error("; ".join(["interrupted; nothing was written", *getattr(e, "__notes__", ())]))
    number = e.signal_number if isinstance(e, Interrupted) else signal.SIGINT
    return typer.Exit(INTERRUPTED + number)


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
Songs = Annotated[
    list[Path],
    typer.Argument(help="Song, MIDI, ABC or MusicXML files, or directories of them."),
]
PANELS = {"model": "Model", "training": "Training", "corpus": "Corpus", "output": "Output"}
RandomSeed = Annotated[
    int,
    typer.Option(
        "--random-seed",
        metavar="N",
        help="Random seed: initial weights and shuffling.",
        rich_help_panel=PANELS["training"],
    ),
]
OldSeed = Annotated[str | None, typer.Option("--seed", hidden=True)]  # told to use --random-seed
ModelDir = Annotated[
    Path | None,
    typer.Option(
        "--model",
        metavar="MODEL",
        help="A model directory, or a built-in model's name "
        f"({store.DEFAULT_BUILT_IN}) (default: the latest trained, else {store.DEFAULT_BUILT_IN}).",
    ),
]
MusicXml = Annotated[bool, typer.Option("--musicxml", help="Also write MusicXML (.musicxml).")]
Abc = Annotated[bool, typer.Option("--abc", help="Also write ABC notation (.abc).")]
Score = Annotated[
    bool, typer.Option("--score", help="Also write the engraved score (.svg and .score.png).")
]
WRONG = "bold white on red"  # the chapter boxes wrong notes in red
WRONG_MARK = "*"  # and a character, for output without colour


@app.command()
def render(
    song: Annotated[Path, typer.Argument(help="A song file.")],
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="The MIDI file (.mid), or MIDI and audio (.wav), the song file (.txt), a score "
            "(.musicxml, .mxl, .abc, .svg, .score.png).",
        ),
    ],
    tempo: Tempo = None,
    program: Program = None,
    wav: Annotated[bool, typer.Option(help="Also write audio (.wav) through FluidSynth.")] = False,
    musicxml: MusicXml = False,
    abc: Abc = False,
    score: Score = False,
    soundfont: Annotated[
        Path | None, typer.Option(help="A SoundFont for --wav (default: $MELODYGEN_SOUNDFONT).")
    ] = None,
) -> None:
    """Write a song file as a MIDI file (and as audio, a score)."""
    outputs = tasks.Outputs(out, wav, soundfont=soundfont, musicxml=musicxml, abc=abc, score=score)
    parsed, files, problem = tasks.render(song, outputs, tempo, program)
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

    def note(self, text: str) -> None:
        self.console.print(escape(text))

    def task(self, label: str):
        task = None
        logged = [-LOG_EVERY]  # seconds of training when a plain line was last printed

        def on_epochs(history) -> None:
            nonlocal task
            epochs = history.planned
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


def _rhythm_table(rows: dict[str, Rhythm], reference: Rhythm) -> Table:
    """How some groups of songs keep time (docs/cli.md), one row each."""
    table = Table(box=box.MINIMAL_HEAVY_HEAD, pad_edge=False, collapse_padding=True)
    columns = ("rhythm", "tunes", "whole bars", "notes across a bar line", "onsets' distance")
    for column in columns:
        table.add_column(column, justify="left" if column == "rhythm" else "right", no_wrap=True)
    for name, r in rows.items():
        table.add_row(name, f"{r.tunes:,}", f"{r.whole_share:.1%}", f"{r.crossing_share:.2%}",
                      f"{r.onset_distance(reference):.3f}")  # fmt: skip
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
        metavar="F",
        help=f"Share of songs held out to measure the model (default {DEFAULT_VALID:g} from "
        f"{MIN_SPLIT_SONGS} songs on, else 0); a song is held out when the CRC-32 of its file "
        "name is 0 mod round(1/F).",
        rich_help_panel=PANELS["corpus"],
    ),
]


def _value(value: object) -> str:
    """A setting's default as the help shows it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return f"{value[0]}..{value[1]}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _setting_help(uses: list[tuple[Kind, Setting]]) -> str:
    """A setting's help for the kinds that have it: each kind's default, kinds that describe
    it alike together: 'Epochs at most (mlp, lstm: 2000; song-rnn: 100).'"""
    by_help: dict[str, dict[str, list[str]]] = {}
    for kind, s in uses:
        by_help.setdefault(s.help, {}).setdefault(_value(getattr(kind.spec, s.name)), []).append(
            kind.name
        )
    parts = []
    for help, defaults in by_help.items():
        kinds_defaults = "; ".join(f"{', '.join(names)}: {v}" for v, names in defaults.items())
        parts.append(f"{help} ({kinds_defaults})")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _setting_options(among: Iterable[Kind], everywhere: bool = False) -> list[inspect.Parameter]:
    """An option for each setting of these kinds (with ``everywhere``, each one they all
    have), its type, limits and help read from the specs."""
    among = list(among)
    uses: dict[str, list[tuple[Kind, Setting]]] = {}
    for kind in among:
        for s in kind.spec.settings():
            uses.setdefault(s.name, []).append((kind, s))
    options = []
    for name, pairs in uses.items():
        if everywhere and len(pairs) < len(among):
            continue
        first = pairs[0][1]
        shape = (first.type, first.optional, first.low, first.high, first.panel, first.choices)
        if any((s.type, s.optional, s.low, s.high, s.panel, s.choices) != shape for _, s in pairs):
            raise TypeError(f"the kinds' {name!r} settings differ in type, range or panel")
        extra: dict[str, Any] = {"rich_help_panel": PANELS[first.panel]}
        if first.type is bool:
            kind: Any = bool
        elif first.type is tuple:
            kind, extra["metavar"] = str, "LOW..HIGH"
        elif first.type is str:
            kind, extra["metavar"] = str, name.upper()  # the help names the choices
        else:
            kind = first.type
            extra.update(metavar="N" if kind is int else "X", min=first.low, max=first.high)
        option = typer.Option(first.flag, help=_setting_help(pairs), **extra)
        annotation = Annotated[kind | None, option]
        options.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                         annotation=annotation))  # fmt: skip
    return options


def _with_settings(among: Iterable[Kind], everywhere: bool = False) -> Callable:
    """Give a command's ``**settings`` one option per setting of the kinds (_setting_options)."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
        params = sorted(own + _setting_options(among, everywhere), key=_panel_order)
        keywords = [p.replace(kind=p.KEYWORD_ONLY) for p in params]  # typer passes them so
        command.__signature__ = signature.replace(parameters=keywords)  # type: ignore[attr-defined]
        return command

    return decorate


def _panel_order(param: inspect.Parameter) -> int:
    """Where the option's panel comes in PANELS (-1: an argument, or no panel)."""
    for info in getattr(param.annotation, "__metadata__", ()):
        if getattr(info, "rich_help_panel", None):
            return list(PANELS.values()).index(info.rich_help_panel)
    return -1


def _given(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line, as the specs hold them."""
    try:
        return {name: SETTINGS[name].parse(v) for name, v in settings.items() if v is not None}
    except SettingError as e:
        raise BadInput(e.message, parameter=e.name) from None


def _spec(kind: Kind, settings: dict[str, Any]) -> Spec:
    """The kind's spec with the settings given on the command line; a warning names each
    given one the kind does not have."""
    mine = {s.name for s in kind.spec.settings()}
    given = _given(settings)
    for name in given.keys() - mine:
        _stderr().print(
            f"[yellow]warning:[/] {FLAGS[name]} is not a setting of {kind.name}: ignored"
        )
    return kind.spec.replace(**{name: v for name, v in given.items() if name in mine})


def _kinds_by(value: Callable[[Kind], str]) -> str:
    """The kinds grouped by a value: '0 for mlp, lstm; 1 for ngram, song-rnn'."""
    groups: dict[str, list[str]] = {}
    for kind in KINDS.values():
        groups.setdefault(value(kind), []).append(kind.name)
    return "; ".join(f"{v} for {', '.join(names)}" for v, names in groups.items())


def _refuse_old_seed(seed: str | None) -> None:
    if seed is not None:
        raise BadInput("--seed is compose's melody to continue; the random seed is --random-seed")


Out = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--out",
        metavar="DIR",
        help="The model directory (default: outputs/NAME-KIND).",
        rich_help_panel=PANELS["output"],
    ),
]


KindOption = Annotated[
    ModelName | None,
    typer.Option(
        "--model",
        metavar="KIND",
        help=f"The model kind: {', '.join(KINDS)} (default: {kinds.DEFAULT_RULE}).",
        rich_help_panel=PANELS["model"],
    ),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Stop at the first unusable song in a directory.",
        rich_help_panel=PANELS["corpus"],
    ),
]
From = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="MODEL",
        help="Fine-tune this model (a directory, or a built-in model's name: "
        f"{store.DEFAULT_BUILT_IN}) on the songs, from its weights and with its sizes.",
        rich_help_panel=PANELS["model"],
    ),
]
WithinTune = Annotated[
    str | None,
    typer.Option(
        "--within-tune",
        metavar="HOW",
        help="What the model learns from each tune as it reads it: none, default, or stm, "
        "ngram, dynamic, cache and NAME=VALUE, e.g. default,bias=2 (docs/cli.md) (default: "
        f"{_kinds_by(lambda k: k.within.describe())}).",
    ),
]
PerNote = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE.csv",
        help="Also write each note's information content and entropy, as IDyOM gives them.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the measures as JSON.")]


@app.command()
@_with_settings(KINDS.values())
def train(
    songs: Songs,
    model: KindOption = None,
    random_seed: RandomSeed = DEFAULT_SEED,
    seed: OldSeed = None,
    valid: Valid = None,
    strict: Strict = False,
    out: Out = None,
    base: From = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue an interrupted run from its last epoch (kept in OUT.partial/): the "
            "same songs and options, checked.",
            rich_help_panel=PANELS["training"],
        ),
    ] = False,
    **settings: Any,
) -> None:
    """Train a model on songs and save it as the latest model. Each kind takes the settings
    whose help names it."""
    _refuse_old_seed(seed)
    request = _train_request(songs, model, random_seed, valid, strict, out, base, settings)
    request = dataclasses.replace(request, resume=resume)
    with _Progress(_stderr()) as progress:
        trained = tasks.train(request, progress.task, _skipped, progress.note)
    report = trained.report
    console = _stdout()
    _print_table(console, _results_table([report]))
    groups = {"training": report.training}
    if report.validation:
        groups["held out"] = report.validation
    _print_table(console, _measures_table(groups))
    if report.untimed:
        console.print(f"{report.untimed:,} songs have no time signature: taken as 4/4")
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
    if report.base:
        console.print(f"fine-tuned from {escape(report.base)}")
    if not trained.written:
        console.print("trained as a worker of the cluster TF_CONFIG describes: its chief writes "
                      "the model")  # fmt: skip
        return
    console.print(f"saved {escape(str(trained.path))}/ (now the latest model)")


@app.command()
@_with_settings(KINDS.values())
def crossval(
    songs: Songs,
    folds: Annotated[
        int,
        typer.Option(min=2, help="Folds: each fold's songs are measured by the others' model."),
    ] = 10,
    model: KindOption = None,
    random_seed: RandomSeed = DEFAULT_SEED,
    valid: Valid = None,
    strict: Strict = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            metavar="DIR",
            help="Where each fold's model (DIR/fold-K) and crossval.json go (default: "
            "outputs/NAME-KIND-crossval).",
            rich_help_panel=PANELS["output"],
        ),
    ] = None,
    base: From = None,
    within_tune: WithinTune = None,
    per_note: PerNote = None,
    as_json: AsJson = False,
    **settings: Any,
) -> None:
    """Cross-validate: train a model per fold on the other folds' songs (the folds drawn with
    the random seed) and measure it on the fold's; print each fold and the pooled figures."""
    request = _train_request(songs, model, random_seed, valid, strict, out, base, settings)
    with _Progress(_stderr()) as progress:
        done = tasks.crossval(request, folds, within_tune, per_note, progress.task, _skipped)
    if as_json:
        print(json.dumps(done.to_json(), indent=2))
        return
    console = _stdout()
    rows = {f"fold {k}": e.overall for k, e in enumerate(done.evaluations)}
    _print_table(console, _measures_table({**rows, "pooled": done.pooled}))
    console.print(f"{done.kind.name}, learning within each tune: {done.within.describe()}")
    also = f"; {escape(str(per_note))}" if per_note else ""
    console.print(f"wrote {escape(str(done.out))}/: fold-0..fold-{folds - 1}, crossval.json{also}")


def _train_request(
    songs: list[Path],
    model: Any,
    random_seed: int,
    valid: float | None,
    strict: bool,
    out: Path | None,
    base: str | None,
    settings: dict[str, Any],
) -> tasks.TrainRequest:
    """What train (and crossval, for each fold) is asked to train."""
    kind = kinds.get(model.value) if model else None
    if kind is None and base is None:
        kind, base = tasks.default_kind(songs)
    return tasks.TrainRequest(
        tuple(songs),
        kind,
        None if base else _spec(kind, settings),
        seed=random_seed,
        valid=valid,
        strict=strict,
        out=out,
        base=base,
        asked=_given(settings),
    )


def _aligned(console: Console, truth: list[str], rows: dict[str, list[str]], given: int) -> None:
    """The song and each prediction in columns, wrong notes in red and marked with
    WRONG_MARK, the ``given`` tokens (a window model's first window) dimmed."""
    width = max(len(t) for tokens in (truth, *rows.values()) for t in tokens) + 2
    label = max(len(name) for name in ("song", *rows)) + 2
    per_line = max(4, (console.width - label) // width)
    for start in range(0, len(truth), per_line):
        line = Text("song".ljust(label), style="bold")
        for i, token in enumerate(truth[start : start + per_line], start):
            line.append(token.ljust(width), style="dim" if i < given else "")
        console.print(line)
        for name, tokens in rows.items():
            line = Text(name.ljust(label))
            for i, token in enumerate(tokens[start : start + per_line], start):
                was_given, wrong = i < given, i >= len(truth) or token != truth[i]
                style = "dim" if was_given else WRONG if wrong else "green"
                line.append(token, style=style)
                mark = WRONG_MARK if wrong and not was_given else ""
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
    as_json: AsJson = False,
    within_tune: WithinTune = None,
    per_note: PerNote = None,
    each_song: Annotated[
        bool, typer.Option("--songs", help="Print each song's predictions, wrong notes marked.")
    ] = False,
    png: Annotated[bool, typer.Option(help="Also write a piano roll of each song.")] = False,
    musicxml: MusicXml = False,
    abc: Abc = False,
    score: Annotated[
        bool,
        typer.Option(
            "--score",
            help="Also write the predictions engraved (.svg, .score.png), wrong notes red, the "
            "true note above.",
        ),
    ] = False,
) -> None:
    """Measure a model on songs; predict them one step at a time and whole; write MIDI."""
    scores = [s for s, on in ((".musicxml", musicxml), (".abc", abc), (".svg", score),
                              (".score.png", score)) if on]  # fmt: skip
    result = tasks.evaluate_songs(
        model, songs or [], out, held_out, png, within_tune, per_note, scores
    )
    _stderr().print(f"{_model_line(result.loaded)}; learning within each tune: "
                    f"{result.within.describe()}")  # fmt: skip
    _skipped(result.skipped, len(result.evaluation.songs) + len(result.skipped))
    evaluation = result.evaluation
    if as_json:
        print(json.dumps({
            "model": result.loaded.name,
            "within_tune": result.within.describe(),
            "measures": evaluation.overall.to_json(),
            "rhythm": {k: r.to_json(result.reference) for k, r in result.rhythm.items()},
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
            _aligned(console, s.song.tokens, rows, s.given)
    _print_table(
        console, _measures_table({"songs" if not held_out else "held out": evaluation.overall})
    )
    _print_table(console, _rhythm_table(result.rhythm, result.reference))
    console.print(f"wrote {', '.join(result.written[:6])}" + (
        f" and {len(result.written) - 6} more" if len(result.written) > 6 else ""
    ) + f" to {escape(str(result.out))}/")  # fmt: skip


@app.command()
@_with_settings(kinds.CHAPTER, everywhere=True)
def compare(
    songs: Annotated[list[Path], typer.Argument(help="A song file (or a directory of songs).")],
    random_seed: RandomSeed = DEFAULT_SEED,
    seed: OldSeed = None,
    valid: Valid = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            metavar="DIR",
            help="Where to write (default: outputs/compare-SONG).",
            rich_help_panel=PANELS["output"],
        ),
    ] = None,
    **settings: Any,
) -> None:
    """Train the chapter's four models on one song and compare them, as the chapter does."""
    _refuse_old_seed(seed)
    with _Progress(_stderr()) as progress:
        compared = tasks.compare(songs, _given(settings), random_seed, out, progress.task, valid)
    console = _stdout()
    _print_table(console, _results_table(compared.reports))
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
            f"starts tunes: {', '.join(k.name for k in KINDS.values() if not k.given(k.spec))}).",
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
            help=f"Most notes to add after the seed (default {CHAPTER_LENGTH}; up to "
            f"{LONGEST:,} for a model that ends tunes; none with --bars).",
        ),
    ] = None,
    bars: Annotated[
        int, typer.Option(min=0, help="Stop at this many bar lines after the seed.")
    ] = 0,
    end: Annotated[
        bool, typer.Option("--end/--no-end", help="Stop where the model ends a tune.")
    ] = True,
    in_bars: Annotated[
        bool | None,
        typer.Option(
            "--in-bars/--across-bars",
            help="Keep every note inside its bar and end tunes on a bar line, finishing the bar "
            "(default for a model told the meter); --across-bars: what the model samples.",
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="0 = the chapter's argmax; above 0 samples (default: "
            f"{_kinds_by(lambda k: _value(float(k.temperature)))}).",
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
        str | None,
        typer.Option(
            help="Time signature, e.g. 3/4: a model told the meter composes in it (one it has "
            "seen); default: drawn from the training songs' meters for such a model, else "
            "their most common."
        ),
    ] = None,
    wav: Annotated[bool, typer.Option(help="Also write audio (.wav) through FluidSynth.")] = False,
    png: Annotated[bool, typer.Option(help="Also write a piano roll (.png).")] = False,
    txt: Annotated[
        bool, typer.Option("--txt", help="Also write the song file (.txt), with bar lines.")
    ] = False,
    musicxml: MusicXml = False,
    abc: Abc = False,
    score: Score = False,
    html: Annotated[
        Path | None,
        typer.Option(
            help="Also write a page to listen to the tunes and choose (.html): each tune's "
            "score, audio, figures and files beside it (implies --wav --musicxml --abc --score)."
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="Compose in this key: D, Bb, Em, F#m... (a model told the key composes in it; "
            "another's tunes are moved into it, seed and all)."
        ),
    ] = None,
    soundfont: Annotated[
        Path | None, typer.Option(help="A SoundFont for --wav (default: $MELODYGEN_SOUNDFONT).")
    ] = None,
    within_tune: Annotated[
        str | None,
        typer.Option(
            "--within-tune",
            metavar="HOW",
            help="What the model learns from each tune as it draws it, as evaluate's option "
            "(default: none: learning from its own samples, it repeats them).",
        ),
    ] = None,
) -> None:
    """Compose tunes with a trained model (continuing a seed, if given): print the tokens,
    write MIDI with -o."""
    limits = Limits(length=length, bars=bars, stop_at_end=end, in_bars=in_bars)
    composition = tasks.compose(
        model,
        tasks.read_seed(seed, seed_file),
        count,
        Sampling(temperature, top_k, top_p, beam),
        random_seed,
        limits,
        tasks.Outputs(out, wav, png, soundfont, txt, musicxml, abc, score),
        {"tempo": tempo, "program": program, "time": time},
        max_copy,
        key=key,
        within_tune=within_tune,
        html=html,
    )
    console = _stderr()
    console.print(_model_line(composition.loaded))
    if random_seed is None and composition.random_seed is not None:
        drawn = composition.random_seed
        console.print(f"random seed {drawn} (pass --random-seed {drawn} to repeat)")
    for tune in composition.tunes:
        print(" ".join(format_body(tune.song, bars_per_line=None)))
        console.print(escape(_tune_line(tune, count, max_copy)))
    if html is not None:
        console.print(f"wrote {escape(str(html))}: the {count} tunes to listen to and choose")
    if composition.audio:
        raise AudioUnavailable(composition.audio)


def _model_line(loaded: store.Loaded) -> str:
    if loaded.built_in and loaded.latest:
        return (f"no model trained yet: using the built-in model {loaded.built_in} "
                "('melodygen models' lists the models)")  # fmt: skip
    return f"model {escape(loaded.name)}"


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
    s, r = tune.style, tune.rhythm
    figures = (f"range {s.range}, {s.in_scale:.0%} in {s.scale}, distance from the training "
               f"songs: pitch classes {s.pitch_class_distance:.2f}, intervals "
               f"{s.interval_distance:.2f}, onsets in the bar "
               f"{tune.onset_distance:.2f}")  # fmt: skip
    meter = f"{tune.song.time[0]}/{tune.song.time[1]}" if tune.song.time else "4/4"
    bars = "whole bars" if r.whole else "ends inside a bar"
    timing = f"{meter}, {bars}, {r.crossing} of {r.notes} notes across a bar line"
    if tune.in_key is not None:
        timing += f"; {tune.in_key:.0%} in {key_for_people(tune.song.key)}"
    also = f"; wrote {', '.join(p.name for p in tune.files[1:])}" if tune.files[1:] else ""
    return f"{name}: {added} notes added; {copied}; {timing}; {figures}{also}"


@app.command()
def models() -> None:
    """List the built-in models and the latest trained one, with their held-out figures."""
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("model", "", "kind", "songs", "held-out bits/token", "pitch bits/note",
                   "fine-tuned from"):  # fmt: skip
        right = "bits" in column or column == "songs"
        table.add_column(column, justify="right" if right else "left")
    for m in tasks.models():
        held = m.held_out or {}
        figures = [f"{held[k]:.3f}" if isinstance(held.get(k), float) else "-"
                   for k in ("bits_per_token", "pitch_bits_per_note")]  # fmt: skip
        table.add_row(escape(m.name), m.role, m.kind, f"{m.songs:,}", *figures, m.base or "")
    _print_table(_stdout(), table)


corpus_app = typer.Typer(help="Write a corpus of songs to learn a style from.")
app.add_typer(corpus_app, name="corpus")


CorpusDirectory = Annotated[Path, typer.Argument(metavar="DIR", help="A new or empty directory.")]


@corpus_app.command("essen")
def corpus_essen(directory: CorpusDirectory) -> None:
    """Write the Essen folk songs that music21 ships as song files (needs music21)."""
    _write_corpus(directory, "essen", ("Essen", "ABC files"), "tunes the notation cannot spell yet")


@corpus_app.command("chorales")
def corpus_chorales(directory: CorpusDirectory) -> None:
    """Write the soprano line of each Bach chorale that music21 ships as a song file (needs
    music21)."""
    _write_corpus(directory, "chorales", ("Bach chorales", "files"), "chorales", named=True)


def _write_corpus(
    directory: Path, source: str, label: tuple[str, str], skipped: str, named: bool = False
) -> None:
    """A bundled corpus written with a bar of the files read (``label``: before and after
    it), then one line of what was written and what was ``skipped``, each reason with its
    count and, when ``named`` (a few hundred files, not thousands of tunes), the tunes."""
    columns = (TextColumn(label[0]), BarColumn(), MofNCompleteColumn(), TextColumn(label[1]))
    with Progress(*columns, TimeElapsedColumn(), console=_stderr()) as bar:
        task = bar.add_task(source, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        export = tasks.write_corpus(directory, source, progress)
    counts = {**export.skipped, **export.failed}
    reasons = ("; " if named else ", ").join(
        f"{n} {why}" + (f": {', '.join(export.names[why])}" if named else "")
        for why, n in counts.items()
    )
    _stdout().print(
        f"wrote {export.written:,} songs to {escape(str(directory))}/; skipped "
        f"{sum(counts.values()):,} {skipped}" + (f" ({escape(reasons)})" if reasons else "")
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point: returns the exit status instead of raising SystemExit."""
    return typer.main.get_command(app).main(argv, prog_name="melodygen", standalone_mode=False)
