"""Tied notes as written (`c4~ c8`) or merged into one token (`c4.`): which scores better.

The Essen ABC files music21 ships are read tune by tune (as `melodygen corpus essen` does) and
written twice as song files with the same names: A "as written", each ABC note its own token
with `~` where it is tied into the next; B "merged", each run of tied notes one token when one
token (dotted or triplet, too) is exactly its total length, and as written otherwise. Kept:
tunes of plain notes, rests, ties and 3:2 triplets with at least 12 sounding notes and rests.
An `ngram` model is trained on each, in-process on the tokens exactly as written (`melodygen
train` itself merges tied runs as it reads them: the choice this script made), with the default
held-out split (the same songs in both), and the held-out songs are measured. Both spell the
same music, so the comparable measure is total bits divided by the sounding notes and rests (a
tied continuation is not one).

    python benchmarks/ties.py             # all Essen files (several minutes: music21 is slow)
    python benchmarks/ties.py --files 3   # the first three files: a quick run
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from collections import Counter
from fractions import Fraction
from pathlib import Path

from melodygen import corpus, evaluation, notation, training
from melodygen.kinds.ngram import NGRAM
from melodygen.notation import Note, Song

PLAIN = {  # written length in quarter notes -> (duration, dots) of the one token that long
    Fraction(4, duration) * factor: (duration, dots)
    for duration in notation.DURATIONS
    for dots, factor in enumerate(notation.DOT_FACTORS)
}
LENGTHS = {  # sounding length -> (duration, dots, triplet); a plain token where both exist
    **{n * notation.TRIPLET: (d, dots, True) for n, (d, dots) in PLAIN.items()},
    **{n: (d, dots, False) for n, (d, dots) in PLAIN.items()},
}
TIED = ("start", "continue")
COUNTED = [  # in the tunes kept
    "tied runs merged",
    "tied runs left as written",
    "tied notes respelled to the held pitch",
    "ties into a rest (dropped)",
]


def spell(n) -> Note | str:
    """One music21 note or rest as a token without its tie, or why it cannot be one."""
    tuplets = n.duration.tuplets
    if tuplets and (len(tuplets), tuplets[0].numberNotesActual, tuplets[0].numberNotesNormal,
                    tuplets[0].tupletMultiplier()) != (1, 3, 2, notation.TRIPLET):  # fmt: skip
        return "other tuplets"
    written = Fraction(n.quarterLength) / (notation.TRIPLET if tuplets else 1)
    if written not in PLAIN:
        return "a length no token has"
    duration, dots = PLAIN[written]
    if n.isRest:
        return Note(None, duration, dots, triplet=bool(tuplets))
    p = n.pitch
    try:
        return Note(p.step.lower(), duration, dots, p.octave, int(p.alter), triplet=bool(tuplets))
    except ValueError:
        return "a pitch no token has"


def runs_of(elements, counts: Counter) -> list[list[Note]] | str:
    """The tune's sounding notes and rests, each the run of tokens tied together."""
    runs: list[list[Note]] = []
    tied = False  # the element before is a note tied into this one
    for n in elements:
        if n.isChord or n.duration.isGrace:
            return "chords" if n.isChord else "grace notes"
        note = spell(n)
        if isinstance(note, str):
            return note
        if tied and not note.is_rest:  # held: the pitch of the note tied into it (music21
            held = runs[-1][-1]  # reads ABC's =F6-|F2 as F then F#: the key after the bar line)
            counts["tied notes respelled to the held pitch"] += note.midi_pitch != held.midi_pitch
            spelling = {"letter": held.letter, "octave": held.octave, "alter": held.alter}
            runs[-1].append(dataclasses.replace(note, **spelling))
        else:
            counts["ties into a rest (dropped)"] += tied
            runs.append([note])
        tied = not note.is_rest and n.tie is not None and n.tie.type in TIED
    if len(runs) < corpus.ESSEN_MIN_TOKENS:
        return f"fewer than {corpus.ESSEN_MIN_TOKENS} notes and rests"
    return runs


def as_written(runs: list[list[Note]]) -> list[Note]:
    return [dataclasses.replace(n, tie=i + 1 < len(r)) for r in runs for i, n in enumerate(r)]


def merged(runs: list[list[Note]], counts: Counter) -> list[Note]:
    notes = []
    for run in runs:
        total = sum(n.length for n in run)
        if len(run) > 1:
            counts["tied runs merged" if total in LENGTHS else "tied runs left as written"] += 1
        if len(run) == 1 or total not in LENGTHS:
            notes += as_written([run])
            continue
        duration, dots, triplet = LENGTHS[total]
        notes.append(dataclasses.replace(run[0], duration=duration, dots=dots, triplet=triplet))
    return notes


def write_corpora(files: list[Path], a: Path, b: Path, counts: Counter) -> None:
    """Both corpora from the ABC files, tune by tune; counts what was read, kept and skipped."""
    from music21 import abcFormat, meter  # slow to import

    for path in files:
        handler = abcFormat.ABCFile().readstr(path.read_text(encoding="utf-8"))
        for number, tune in sorted(handler.splitByReferenceNumber().items()):
            counts["tunes read"] += 1
            try:
                part = corpus.abc_part(tune)
            except Exception as e:  # music21 raises many kinds; one bad tune must not stop us
                counts[f"skipped: music21 failed ({type(e).__name__})"] += 1
                continue
            tune_counts: Counter = Counter()  # counted for the tunes kept only
            runs = runs_of(part.flatten().notesAndRests, tune_counts)
            if isinstance(runs, str):
                counts[f"skipped: {runs}"] += 1
                continue
            signature = part.recurse().getElementsByClass(meter.TimeSignature).first()
            time = (signature.numerator, signature.denominator) if signature else None
            title, name = f"{path.stem}-{number}", f"{path.stem}-{number:04d}.txt"
            for directory, notes in ((a, as_written(runs)), (b, merged(runs, tune_counts))):
                song = Song(tuple(notes), name=title, title=title, time=time)
                (directory / name).write_text(notation.format_song(song), encoding="utf-8")
                assert notation.read_song(directory / name).notes == song.notes, name
            counts.update(tune_counts)
            counts["kept"] += 1
            counts["kept with ties"] += any(len(r) > 1 for r in runs)
            counts["kept with triplets"] += any(n.triplet for r in runs for n in r)


def measure(songs: Path) -> tuple[int, dict]:
    """An ngram trained in-process on the songs exactly as written (melodygen train would merge
    A's tied runs as it reads them) and its held-out songs by the default split: the vocabulary
    size and each held-out song's (sounding events, measures), by file name."""
    read = [notation.read_song(path) for path in sorted(songs.iterdir())]
    train, held = corpus.split(read, corpus.DEFAULT_VALID)
    model = training.train(NGRAM, NGRAM.spec, train, seed=5).model
    result = evaluation.evaluate(model, held, full_song=False)
    return len(model.vocab), {  # a tied note's continuation is not a new event
        corpus.file_name(s): (len(s.notes) - sum(n.tie for n in s.notes), r.measures)
        for s, r in zip(held, result.songs, strict=True)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, help="only the first N ABC files (sorted)")
    args = parser.parse_args()
    from music21 import common

    folder = common.getCorpusFilePath() / "essenFolksong"
    files = sorted(p for p in folder.glob("*.abc") if not p.stem.startswith(corpus.ESSEN_LEFT_OUT))
    files = files[: args.files] if args.files else files
    counts: Counter = Counter()
    with tempfile.TemporaryDirectory(prefix="melodygen-ties-") as work:
        work = Path(work)
        dirs = {"A as written": work / "written", "B merged": work / "merged"}
        for d in dirs.values():
            d.mkdir()
        write_corpora(files, *dirs.values(), counts)
        print(f"{len(files)} ABC files: {counts['tunes read']:,} tunes read, "
              f"{counts['kept']:,} kept ({counts['kept with ties']:,} with ties, "
              f"{counts['kept with triplets']:,} with triplets)")  # fmt: skip
        for key in sorted(k for k in counts if k.startswith("skipped")) + COUNTED:
            print(f"  {key}: {counts[key]:,}")
        results = {label: measure(d) for label, d in dirs.items()}
    written, merged_ = results["A as written"][1], results["B merged"][1]
    with_ties = {n for n, (events, m) in written.items() if m.tokens > events}
    print("\n| held-out tunes | corpus | tunes | vocabulary | tokens | sounding events "
          "| bits/token | bits/sounding event | pitch bits/note | unseen tokens |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    per_event = {}
    for subset in ("all", "with ties"):
        for label, (vocab, per_song) in results.items():
            rows = [v for n, v in per_song.items() if subset == "all" or n in with_ties]
            events, m = sum(r[0] for r in rows), sum((r[1] for r in rows), evaluation.Measures())
            per_event[subset, label] = m.bits_per_token * m.tokens / events
            print(f"| {subset} | {label} | {len(rows):,} | {vocab:,} | {m.tokens:,} | {events:,} | "
                  f"{m.bits_per_token:.3f} | {per_event[subset, label]:.3f} | "
                  f"{m.pitch_bits_per_note:.3f} | {m.unseen_tokens:,} |")  # fmt: skip
    for subset in ("all", "with ties"):
        a, b = per_event[subset, "A as written"], per_event[subset, "B merged"]
        print(f"{subset}: B - A = {b - a:+.4f} bits per sounding event ({(b - a) / a:+.2%})")
    better = sum(merged_[n][1].token_bits < written[n][1].token_bits for n in with_ties)
    print(
        f"B scores fewer bits than A on {better} of the {len(with_ties)} held-out tunes with ties"
    )


if __name__ == "__main__":
    main()
