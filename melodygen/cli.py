"""The command line: a thin Typer shell over functions that take and return plain data.

Nothing here imports TensorFlow at module level, so ``--help``, ``render``, ``import`` and
``compose`` answer at once; ``train`` and ``compare`` import it when they run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from melodygen import midi, notation
from melodygen.errors import MelodygenError
from melodygen.files import read_bytes, write_atomic

INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C (128 + SIGINT)


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


def _not_built(command: str) -> None:
    raise MelodygenError(f"'{command}' is not built yet", exit_code=1)


@app.command()
def train() -> None:
    """Train a model on songs (not built yet)."""
    _not_built("train")


@app.command()
def compose() -> None:
    """Continue a seed with a trained model (not built yet)."""
    _not_built("compose")


@app.command()
def evaluate() -> None:
    """Compare a model's predictions with a song (not built yet)."""
    _not_built("evaluate")


@app.command()
def compare() -> None:
    """Train the four models on one song and compare them (not built yet)."""
    _not_built("compare")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: returns the exit status instead of raising SystemExit."""
    return typer.main.get_command(app).main(argv, prog_name="melodygen", standalone_mode=False)
