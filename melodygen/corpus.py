"""Collections of songs: reading files and directories, skipping what cannot be used (and saying
why), the stable held-out split, and the corpora a user can write out without finding data.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from melodygen import midi, notation, transcribe
from melodygen.errors import BadInput
from melodygen.notation import Song

SONG_SUFFIXES = (".txt",)
MIN_SPLIT_SONGS = 20  # below this, no songs are held out by default
DEFAULT_VALID = 0.1


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class Corpus:
    songs: list[Song]
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def files(self) -> int:
        return len(self.songs) + len(self.skipped)


def read_file(path: Path) -> Song:
    """One song file, or a MIDI, ABC or MusicXML file imported as ``melodygen import`` does,
    with its tied notes as models learn them (notation.merge_ties)."""
    if path.suffix.lower() in midi.SUFFIXES + transcribe.SCORE_SUFFIXES:
        song = transcribe.import_file(path).song
    else:
        song = notation.read_song(path)
    return dataclasses.replace(song, notes=notation.merge_ties(song.notes))


def _files(directory: Path) -> list[Path]:
    suffixes = SONG_SUFFIXES + midi.SUFFIXES + transcribe.SCORE_SUFFIXES
    found = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, n) for n in names if Path(n).suffix.lower() in suffixes]
    return sorted(found)


def song_files(paths: Sequence[Path]) -> list[Path]:
    """Every file ``read`` would read: the files named, and those found in directories."""
    return [f for p in map(Path, paths) for f in (_files(p) if p.is_dir() else [p])]


def read(
    paths: Sequence[Path],
    strict: bool = False,
    too_short: Callable[[Song], str | None] = lambda song: None,
) -> Corpus:
    """Songs from files and directories (searched recursively for song and MIDI files).

    A file named directly must be usable: any problem is an error. In a directory, a file that
    cannot be used (a bad token, too short for the model, not a MIDI file) is skipped with the
    reason, unless ``strict``.
    """
    songs: list[Song] = []
    skipped: list[Skipped] = []
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            song = read_file(path)
            if reason := too_short(song):
                raise BadInput(f"{path}: {reason}")
            songs.append(song)
            continue
        files = _files(path)
        if not files:
            raise BadInput(f"{path}: no songs (*.txt, *.mid or *.midi files) in this directory")
        for file in files:
            try:
                song = read_file(file)
                if reason := too_short(song):
                    raise BadInput(f"{file}: {reason}")
            except BadInput as e:
                if strict:
                    raise
                skipped.append(Skipped(str(file), str(e).removeprefix(f"{file}:").strip()))
                continue
            songs.append(song)
    if not songs:
        raise BadInput(f"no usable songs: all {len(skipped)} were skipped")
    return Corpus(songs, skipped)


def file_name(song: Song) -> str:
    """The name the split hashes: the song file's name with its extension."""
    return Path(song.source).name


def is_held_out(name: str, fraction: float) -> bool:
    """A song is held out when the CRC-32 of its file name (UTF-8) is 0 modulo
    round(1 / fraction): stable as songs are added, and easy for other tools to reproduce."""
    return fraction > 0 and zlib.crc32(name.encode("utf-8")) % round(1 / fraction) == 0


def default_valid(songs: Sequence[Song]) -> float:
    return DEFAULT_VALID if len(songs) >= MIN_SPLIT_SONGS else 0.0


def split(songs: Sequence[Song], fraction: float) -> tuple[list[Song], list[Song]]:
    """(training, held-out) songs, by :func:`is_held_out`."""
    if not 0 <= fraction < 1:
        raise BadInput(f"must be at least 0 and below 1, not {fraction:g}", parameter="valid")
    held = [is_held_out(file_name(s), fraction) for s in songs]
    train = [s for s, h in zip(songs, held, strict=True) if not h]
    if not train:
        raise BadInput(f"all {len(songs)} songs are held out: use a smaller validation fraction")
    return train, [s for s, h in zip(songs, held, strict=True) if h]


# Bundled corpora: the Essen folk songs that music21 ships (the optional extra "corpus").

ESSEN_MIN_TOKENS = 12  # shorter tunes in the collection are quoted fragments
ESSEN_LEFT_OUT = ("test",)  # ABC files of music21's own tests, some repeating Essen tunes


@dataclass
class Export:
    """What a corpus export did, counted in tunes."""

    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> tunes
    failed: dict[str, int] = field(default_factory=dict)  # music21's error -> tunes

    def count(self, table: dict[str, int], reason: str) -> None:
        table[reason] = table.get(reason, 0) + 1


def abc_part(tune):
    """One tune of a music21 ABCHandler as a music21 part, without beams: they are engraving
    only, and beaming takes half of music21's time to read a tune."""
    from music21 import abcFormat

    return abcFormat.translate.abcToStreamPart(tune, _unbeamed_part()())


@functools.cache
def _unbeamed_part():
    from music21 import stream

    class Unbeamed(stream.Part):
        def makeBeams(self, **_):
            pass

    return Unbeamed


def write_essen(
    directory: Path,
    on_progress: Callable[[int, int], None] | None = None,
    files: Sequence[Path] | None = None,
) -> Export:
    """Write each tune of the ABC ``files`` (default: music21's essenFolksong collection) into
    ``directory`` as ``<file stem>-<X number, 4 digits>.txt``, ties merged (write_length:
    tied tokens only where no token has the length), triplets as triplets, and count the tunes
    the notation cannot spell yet (grace notes, chords, lengths no tokens add up to, such as
    other tuplets').
    ``on_progress(files done, files)`` after each file."""
    try:
        from music21 import abcFormat, common, meter  # optional, and slow to import
    except ImportError:
        raise BadInput(
            'the Essen corpus comes with music21: pip install "melodygen[corpus]"'
        ) from None

    if files is None:
        files = [
            p
            for p in (common.getCorpusFilePath() / "essenFolksong").glob("*.abc")
            if not p.stem.startswith(ESSEN_LEFT_OUT)
        ]
    files = sorted(files)
    export = Export()
    for done, path in enumerate(files, start=1):
        # Tokenized once per file, each tune (X:) built on its own, so that a tune music21
        # cannot read is counted instead of losing the file.
        handler = abcFormat.ABCFile().readstr(path.read_text(encoding="utf-8"))
        for number, tune in sorted(handler.splitByReferenceNumber().items()):
            abc_notes = [t for t in tune.tokens if isinstance(t, abcFormat.ABCNote)]
            reason = (
                "chords" if any(isinstance(t, abcFormat.ABCChord) for t in abc_notes)
                else "grace notes" if any(t.inGrace for t in abc_notes)
                else None
            )  # fmt: skip
            if reason:
                export.count(export.skipped, reason)
                continue
            try:
                part = abc_part(tune)
            except Exception as e:  # music21 raises many kinds; one bad tune must not stop us
                export.count(export.failed, type(e).__name__)
                continue
            notes = _essen_notes(part.flatten().notesAndRests)
            if isinstance(notes, str):
                export.count(export.skipped, notes)
                continue
            # The tune's own meter (M:); the flattened score's first one can be an overfull
            # bar's that music21 re-barred.
            signature = part.recurse().getElementsByClass(meter.TimeSignature).first()
            time = (signature.numerator, signature.denominator) if signature else None
            title = f"{path.stem}-{number}"
            song = Song(tuple(notes), name=title, title=title, time=time)
            (directory / f"{path.stem}-{number:04d}.txt").write_text(
                notation.format_song(song), encoding="utf-8"
            )
            export.written += 1
        if on_progress:
            on_progress(done, len(files))
    return export


def _essen_notes(elements) -> list[notation.Note] | str:
    """Notes and rests with ties merged into one token each, or why that cannot be done."""
    merged = []  # [first element, total quarter length, tie type of the last element]
    for n in elements:
        tie = n.tie.type if n.tie else None
        if merged and merged[-1][2] in ("start", "continue"):
            merged[-1][1] += n.quarterLength
            merged[-1][2] = tie
        else:
            merged.append([n, n.quarterLength, tie])
    notes: list[notation.Note] = []
    for n, length, _ in merged:
        note = notation.REST
        if not n.isRest:
            p = n.pitch
            note = notation.Note(p.step.lower(), 4, 0, p.octave, int(p.alter))
        try:
            notes += notation.write_length(note, Fraction(length))
        except ValueError:
            return "a length no tokens add up to"
    if len(notes) < ESSEN_MIN_TOKENS:
        return f"fewer than {ESSEN_MIN_TOKENS} notes and rests"
    return notes
