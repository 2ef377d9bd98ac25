"""Scores out: the MusicXML (score.py) and ABC (abc.py) melodygen writes, read by the programs
musicians use, for three groups of songs:

- songs: the seven files of songs/;
- composed: 50 tunes composed by the built-in model essen (random seed 1, compose's default
  sampling; the model is named by its directory, since compose without one takes the model
  trained last when there is one);
- imported: the files the tests import from disk, tests/data/models/*.mid (compose's expected
  MIDI), and the ABC and MusicXML files tests/test_import.py builds in code, rebuilt here the
  same way; each read by ``transcribe.import_file``.

Each song is written as MusicXML and ABC into a temporary directory (--keep DIR: into DIR),
and checked:

- xml/music21: music21 reads the MusicXML back to the song's sounding notes: (MIDI pitch or
  rest, quarter notes) of each, tied notes one note and a run of rests one rest (a score
  splits a rest at a bar line);
- abc/music21: the same for the ABC;
- abc/abc2midi: abc2midi (Debian's abcmidi) plays the ABC as the notes of melodygen's own MIDI
  of the song: pitch, start and end in beats, within two ticks of 480 (abc2midi starts each
  note a tick late);
- xml/mscore3: MuseScore 3 (Debian's musescore3) converts the MusicXML to PDF: exit 0, a
  non-empty PDF, and no word that it found no valid MusicXML (it exits 0 then too, with a blank
  page).

    python benchmarks/scores.py             # about a minute
    python benchmarks/scores.py --keep out  # and keep the files in out/

Prints one table (group, files, and how many passed each check), then each failure and its
reason; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import io
import operator
import os
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import mido

from melodygen import abc, generation, midi, score, store, tasks, transcribe
from melodygen.notation import Song, read_song

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("xml/music21", "abc/music21", "abc/abc2midi", "xml/mscore3")
TOLERANCE = Fraction(2, 480)  # of a beat
# What tests/test_import.py writes and imports (test_abc_and_musicxml_import_through_music21)
TEST_ABC = """X:1
T:Triplets and ties
M:2/4
L:1/8
K:G
(3GAB c2 | d2- d>e | d4 |]
"""
TEST_WALTZ = "tinyNotation: 3/4 e4 f#8 g8 trip{a8 b8 c'8} d'2."


def sounding(song: Song) -> list[tuple[int | None, Fraction]]:
    """(MIDI pitch or None, quarter notes) of each sounding note: a tied run is one, and so is
    a run of rests."""
    out: list = []
    for n in song.notes:
        if out and n.midi_pitch == out[-1][0] and (out[-1][2] or n.is_rest):
            out[-1] = (n.midi_pitch, out[-1][1] + n.length, n.tie)
        else:
            out.append((n.midi_pitch, n.length, n.tie and not n.is_rest))
    return [(p, length) for p, length, _ in out]


def heard(music21, path: Path) -> list[tuple[int | None, Fraction]]:
    """What music21 reads in a score file, as ``sounding`` lists a song."""
    parsed = music21.converter.parse(str(path), forceSource=True)  # not a cached parse
    out: list = []
    for n in parsed.stripTies().flatten().notesAndRests:
        pitch, length = None if n.isRest else n.pitch.midi, Fraction(n.quarterLength)
        if out and pitch is None and out[-1][0] is None:
            out[-1] = (None, out[-1][1] + length)
        else:
            out.append((pitch, length))
    return out


def difference(expected: list, got: list, what: str = "note", same=operator.eq) -> str | None:
    """None when the lists hold the same items (``same``), else where they first differ."""
    pairs = enumerate(zip(expected, got, strict=False))
    i = next((i for i, (a, b) in pairs if not same(a, b)), min(len(expected), len(got)))
    if i == len(expected) == len(got):
        return None

    def show(items: list) -> str:
        return ", ".join(":".join(map(number, item)) for item in items[i : i + 3]) or "none"

    return (f"{len(expected)} {what}s expected, {len(got)} read; from {what} {i + 1}: "
            f"expected {show(expected)}, read {show(got)}")  # fmt: skip


def number(x) -> str:
    """A pitch or a time as people read it: 1/3, or 16.0021 for a tick off a beat."""
    return f"{float(x):.6g}" if isinstance(x, Fraction) and x.denominator > 96 else str(x)


def midi_notes(data: bytes) -> list[tuple[int, Fraction, Fraction]]:
    """(pitch, start, end) of each note of a MIDI file, in beats, by start then pitch."""
    file = mido.MidiFile(file=io.BytesIO(data))
    notes, held = [], {}
    for track in file.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity:
                held[msg.channel, msg.note] = tick
            elif msg.type in ("note_on", "note_off") and (msg.channel, msg.note) in held:
                start = held.pop((msg.channel, msg.note))
                beat = file.ticks_per_beat
                notes.append((msg.note, Fraction(start, beat), Fraction(tick, beat)))
    return sorted(notes, key=lambda n: (n[1], n[0]))


def check_abc2midi(song: Song, path: Path) -> str | None:
    out = path.with_suffix(".abc2midi.mid")
    run = subprocess.run(["abc2midi", path.name, "-o", out.name], cwd=path.parent,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    said = [line for line in run.stdout.splitlines() if "rror" in line or "arning" in line]
    if run.returncode or not out.is_file():
        return f"abc2midi exit {run.returncode}: {' / '.join(said)[:200]}"
    if any("rror" in line for line in said):
        return f"abc2midi: {' / '.join(said)[:200]}"
    theirs, ours = midi_notes(out.read_bytes()), midi_notes(midi.song_to_midi(song))
    return difference(ours, theirs, "MIDI note", close)


def close(a: tuple, b: tuple) -> bool:
    """The same pitch, starting and ending within TOLERANCE."""
    return a[0] == b[0] and abs(a[1] - b[1]) <= TOLERANCE and abs(a[2] - b[2]) <= TOLERANCE


def check_mscore(path: Path) -> str | None:
    pdf = path.with_suffix(".pdf")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    try:
        run = subprocess.run(["mscore3", "-o", pdf.name, path.name], cwd=path.parent, env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    except subprocess.TimeoutExpired:
        return "mscore3 ran over 120 s"
    said = (run.stdout + run.stderr).strip().splitlines()
    if run.returncode or not pdf.is_file() or not pdf.stat().st_size:
        written = "empty" if pdf.is_file() else "missing"
        return f"mscore3 exit {run.returncode}, PDF {written}: {' / '.join(said[-3:])[:200]}"
    # MuseScore 3 exits 0 with a blank page for a file it cannot read: what it says tells
    refused = [line for line in said if "not a valid MusicXML" in line or line == "empty score"]
    return f"mscore3: {' / '.join(refused)[:200]}" if refused else None


def songs() -> list[tuple[str, Song]]:
    return [(p.stem, read_song(p)) for p in sorted((ROOT / "songs").glob("*.txt"))]


def composed() -> list[tuple[str, Song]]:
    model = store.BUILT_IN / store.DEFAULT_BUILT_IN
    tunes = tasks.compose(model, count=50, sampling=generation.Sampling(None), random_seed=1)
    return [(f"{model.name}-{t.number:02d}", t.song) for t in tunes.tunes]


def imported(music21, work: Path) -> list[tuple[str, Song]]:
    files = sorted((ROOT / "tests" / "data").rglob("*.mid"))
    (work / "tune.abc").write_text(TEST_ABC)
    music21.converter.parse(TEST_WALTZ).write("musicxml", fp=work / "waltz.musicxml")
    files += [work / "tune.abc", work / "waltz.musicxml"]
    return [(p.stem, transcribe.import_file(p, None, None).song) for p in files]


def written(path: Path, make) -> str | None:
    """Write what ``make`` returns to ``path``; why it could not be written, if not."""
    try:
        data = make()
    except Exception as e:  # a failure to report, whatever it is
        return f"not written: {type(e).__name__}: {e}"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return None


def read_check(music21, song: Song, path: Path) -> str | None:
    try:
        return difference(sounding(song), heard(music21, path))
    except Exception as e:
        return f"music21 cannot read it: {type(e).__name__}: {e}"


def run_checks(music21, name: str, song: Song, folder: Path) -> dict[str, str | None]:
    """Each check's failure (None: passed) for one song, its files written into ``folder``."""
    xml, tune = folder / f"{name}.musicxml", folder / f"{name}.abc"
    (folder / f"{name}.mid").write_bytes(midi.song_to_midi(song))
    xml_problem = written(xml, lambda: score.musicxml(song))
    abc_problem = written(tune, lambda: abc.abc(song))
    return {
        "xml/music21": xml_problem or read_check(music21, song, xml),
        "abc/music21": abc_problem or read_check(music21, song, tune),
        "abc/abc2midi": abc_problem or check_abc2midi(song, tune),
        "xml/mscore3": xml_problem or check_mscore(xml),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, metavar="DIR", help="write the files into DIR")
    args = parser.parse_args()
    try:
        import music21
    except ImportError:
        sys.exit('music21 is not installed: pip install -e ".[corpus]"')
    for tool, package in (("abc2midi", "abcmidi"), ("mscore3", "musescore3")):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed: apt-get install {package}")
    with tempfile.TemporaryDirectory(prefix="melodygen-scores-") as tmp:
        work = args.keep or Path(tmp)
        groups = {"songs": songs(), "composed": composed()}
        (work / "sources").mkdir(parents=True, exist_ok=True)  # what the imported are read from
        groups["imported"] = imported(music21, work / "sources")
        print(f"{'group':10} {'files':>5} " + " ".join(f"{c:>12}" for c in CHECKS))
        failures = []
        for group, items in groups.items():
            folder = work / group
            folder.mkdir(parents=True, exist_ok=True)
            passed = dict.fromkeys(CHECKS, 0)
            for name, song in items:
                for check, problem in run_checks(music21, name, song, folder).items():
                    passed[check] += problem is None
                    if problem:
                        failures.append(f"{group}/{name} {check}: {problem}")
            print(f"{group:10} {len(items):>5} " + " ".join(f"{passed[c]:>12}" for c in CHECKS))
        if args.keep:
            print(f"\nfiles kept in {work}")
    print(f"\n{len(failures)} failures" + ":" * bool(failures))
    for line in failures:
        print("  " + line)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
