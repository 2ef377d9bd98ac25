"""`melodygen import` over MIDI files no one here wrote: music21's own test and corpus files.

For every file it checks what issue 12 asks:
- `melodygen import` exits 0 or 2, with one line on stderr;
- the imported melody has the pitches and onsets of the source's highest-note line, as
  pretty_midi (an independent reader) reads the part import took the melody from: for each
  onset of that part, its highest note; a note counts as kept when the song has a note of
  that pitch starting within half a grid step of it;
- the imported song renders to MIDI and imports back to the same tokens.

    python benchmarks/midi_import.py                 # music21's MIDI files
    python benchmarks/midi_import.py more/*.mid      # and others
    python benchmarks/midi_import.py --abc2midi 300  # and 300 Essen tunes written by abc2midi

Prints one row per file and the share of notes kept over all of them; exits 1 below 99%.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from fractions import Fraction
from pathlib import Path

import mido
import pretty_midi

from melodygen import midi, transcribe

BAR = 0.99
warnings.filterwarnings("ignore", module="pretty_midi")  # its notes on odd files, not ours


def music21_files() -> list[Path]:
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.origin:
        sys.exit('music21 is not installed: pip install -e ".[corpus]"')
    root = Path(spec.origin).parent
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in midi.SUFFIXES)


def abc2midi_files(count: int, work: Path) -> list[Path]:
    """``count`` tunes of music21's Essen ABC files, spread over all of them, written as MIDI
    by abc2midi (Debian's abcmidi), an independent MIDI writer."""
    from music21 import common

    if not shutil.which("abc2midi"):
        sys.exit("abc2midi is not installed: apt-get install abcmidi")
    tunes = [
        (path, number)
        for path in sorted((common.getCorpusFilePath() / "essenFolksong").glob("*.abc"))
        for number in re.findall(r"^X:\s*(\d+)", path.read_text(encoding="latin-1"), re.M)
    ]
    chosen = tunes[:: max(1, len(tunes) // count)][:count]
    out = []
    for path, number in chosen:
        target = work / f"{path.stem}-{int(number):04d}.mid"
        subprocess.run(["abc2midi", str(path), number, "-o", str(target)], capture_output=True)
        if target.exists():
            out.append(target)
    return out


def cli_import(path: Path, out: Path) -> tuple[int, list[str]]:
    run = subprocess.run(
        [sys.executable, "-m", "melodygen", "import", str(path), "-o", str(out), "--force"],
        capture_output=True,
        text=True,
    )
    return run.returncode, run.stderr.splitlines()


def reference_line(data: bytes, track: int, channels: tuple[int, ...]) -> list[tuple[float, int]]:
    """(onset in beats, pitch) of the highest note at each onset of one part, read by
    pretty_midi from a copy of the file that keeps every track's meta events (tempo, meter)
    and only that part's notes."""
    source = mido.MidiFile(file=io.BytesIO(data), charset="latin-1")
    copy = mido.MidiFile(type=1, ticks_per_beat=source.ticks_per_beat, charset="latin-1")
    for number, events in enumerate(source.tracks):
        kept, skipped = mido.MidiTrack(), 0
        for msg in events:
            is_note = msg.type in ("note_on", "note_off")
            if is_note and not (number == track and msg.channel in channels):
                skipped += msg.time
                continue
            kept.append(msg.copy(time=msg.time + skipped))
            skipped = 0
        copy.tracks.append(kept)
    buffer = io.BytesIO()
    copy.save(file=buffer)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(buffer.getvalue()))
    top: dict[int, int] = {}
    for instrument in pm.instruments:
        for note in instrument.notes:
            tick = pm.time_to_tick(note.start)
            top[tick] = max(top.get(tick, -1), note.pitch)
    return [(tick / pm.resolution, pitch) for tick, pitch in sorted(top.items())]


def song_onsets(song) -> list[tuple[float, int]]:
    """(onset in beats, pitch) of each sounding note: tied tokens are one note."""
    onsets, at, held = [], Fraction(0), None
    for note in song.notes:
        if not note.is_rest and held != note.midi_pitch:
            onsets.append((float(at), note.midi_pitch))
        held = note.midi_pitch if note.tie else None
        at += note.length
    return onsets


def kept_notes(reference, imported, step: float) -> int:
    starts: dict[int, set[float]] = {}
    for onset, pitch in imported:
        starts.setdefault(pitch, set()).add(onset)
    return sum(
        any(abs(onset - at) <= step / 2 + 1e-9 for at in starts.get(pitch, ()))
        for onset, pitch in reference
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="more MIDI files")
    parser.add_argument("--abc2midi", type=int, default=0, metavar="N",
                        help="add N Essen tunes written as MIDI by abc2midi")  # fmt: skip
    args = parser.parse_args()
    total = kept = failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        files = music21_files() + args.files
        if args.abc2midi:
            (Path(tmp) / "abc2midi").mkdir()
            files += abc2midi_files(args.abc2midi, Path(tmp) / "abc2midi")
        header = f"{'file':28} {'exit':>4} {'notes':>6} {'kept':>6} {'share':>7} {'grid':>13}"
        print(header + "  round trip")
        for path in files:
            status, lines = cli_import(path, Path(tmp) / "out.txt")
            one_line = status in (0, 2) and len(lines) == 1
            if status != 0:
                failures += not one_line
                print(f"{path.name[:28]:28} {status:>4}  {'one line' if one_line else lines}")
                continue
            data = path.read_bytes()
            imported = transcribe.import_file(path)
            reference = reference_line(data, imported.track, imported.channels)
            found = kept_notes(reference, song_onsets(imported.song), 1 / imported.grid)
            again = transcribe.import_midi(midi.song_to_midi(imported.song)).song
            same = again.tokens == imported.song.tokens
            failures += not (one_line and same)
            total, kept = total + len(reference), kept + found
            print(
                f"{path.name[:28]:28} {status:>4} {len(reference):>6} {found:>6} "
                f"{found / len(reference):>7.1%} {transcribe.GRID_NAMES[imported.grid]:>13}  "
                f"{'same tokens' if same else 'DIFFERS'}"
                + ("" if one_line else f"  stderr: {lines}")
            )
    share = kept / total if total else 0.0
    print(f"\n{len(files)} files; highest-note line notes kept: {kept} of {total} = {share:.2%}")
    print(f"files failing the exit, one-line or round-trip check: {failures}")
    sys.exit(0 if share >= BAR and not failures else 1)


if __name__ == "__main__":
    main()
