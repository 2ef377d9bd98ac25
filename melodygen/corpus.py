"""Collections of songs: reading files and directories, skipping what cannot be used (and saying
why), the stable held-out split, and the corpora a user can write out without finding data.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from melodygen import midi, notation, theory, transcribe
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


# Bundled corpora: the Essen folk songs and the Bach chorales that music21 ships (the optional
# extra "corpus").

ESSEN_MIN_TOKENS = 12  # shorter tunes in the collection are quoted fragments
ESSEN_LEFT_OUT = ("test",)  # ABC files of music21's own tests, some repeating Essen tunes
CHORALES_LEFT_OUT = ("bwv846",)  # in music21's bach/ folder: the C major prelude, no chorale
SAME_MELODY = "the same melody as another chorale"  # Bach harmonized many a chorale twice


@dataclass
class Export:
    """What a corpus export did, counted in tunes, and which tunes it left out."""

    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> tunes
    failed: dict[str, int] = field(default_factory=dict)  # music21's error -> tunes
    names: dict[str, list[str]] = field(default_factory=dict)  # reason or error -> tune names

    def count(self, table: dict[str, int], reason: str, name: str) -> None:
        table[reason] = table.get(reason, 0) + 1
        self.names.setdefault(reason, []).append(name)

    def write(self, path: Path, song: Song) -> None:
        """The song as a song file at ``path``, counted as written."""
        path.write_text(notation.format_song(song), encoding="utf-8")
        self.written += 1


def _need_music21(corpus: str) -> None:
    if importlib.util.find_spec("music21") is None:  # optional, and slow to import
        raise BadInput(f'{corpus} needs music21: pip install "melodygen[corpus]"')


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
    _need_music21("the Essen corpus")
    from music21 import abcFormat, common

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
            title = f"{path.stem}-{number}"
            abc_notes = [t for t in tune.tokens if isinstance(t, abcFormat.ABCNote)]
            reason = (
                "chords" if any(isinstance(t, abcFormat.ABCChord) for t in abc_notes)
                else "grace notes" if any(t.inGrace for t in abc_notes)
                else None
            )  # fmt: skip
            if reason:
                export.count(export.skipped, reason, title)
                continue
            try:
                part = abc_part(tune)
            except Exception as e:  # music21 raises many kinds; one bad tune must not stop us
                export.count(export.failed, type(e).__name__, title)
                continue
            notes = _merged_notes(part.flatten().notesAndRests)
            if isinstance(notes, list) and len(notes) < ESSEN_MIN_TOKENS:
                notes = f"fewer than {ESSEN_MIN_TOKENS} notes and rests"
            if isinstance(notes, str):
                export.count(export.skipped, notes, title)
                continue
            song = Song(tuple(notes), name=title, title=title, time=_meter(part))
            export.write(directory / f"{path.stem}-{number:04d}.txt", song)
        if on_progress:
            on_progress(done, len(files))
    return export


def write_chorales(
    directory: Path,
    on_progress: Callable[[int, int], None] | None = None,
    files: Sequence[Path] | None = None,
) -> Export:
    """Write the soprano line of each chorale in the MusicXML ``files`` (default: every
    ``bwv*`` file of music21's ``bach`` folder that is MusicXML, 409 chorales; left out are
    CHORALES_LEFT_OUT and the three chorales it also holds in Humdrum, which the MusicXML ones
    repeat) into ``directory`` as ``<file stem>.txt`` (``bwv40.8.txt``), titled the same.
    The folder, not music21's Riemenschneider list (corpus.chorales.Iterator: 371 numbers, 349
    of these files), because the list leaves out the chorales of some cantatas and oratorios.

    Each song is the soprano line (_soprano) from its first note to its last, its pickup as
    written (the notation writes no bar to pad it), ties merged as write_essen merges them,
    fermatas left out (they lengthen nothing in the notation), the first meter and key in the
    header. A chorale the notation cannot spell (grace notes, chords, lengths no tokens add up
    to) is skipped, and so is a soprano line that an earlier file (by name) already wrote:
    Bach harmonized many a melody twice. ``on_progress(files done, files)`` after each file."""
    _need_music21("the corpus of Bach chorales")
    from music21 import common, converter

    if files is None:
        files = [
            p
            for p in (common.getCorpusFilePath() / "bach").glob("bwv*")
            if p.suffix in (".mxl", ".xml") and p.stem not in CHORALES_LEFT_OUT
        ]
    files = sorted(files)
    export = Export()
    melodies: set[tuple[notation.Note, ...]] = set()
    for done, path in enumerate(files, start=1):
        song: Song | str | None = None
        try:  # music21 raises many kinds; one file it cannot read must not stop us
            song = _soprano(converter.parse(path, forceSource=True), path.stem)
        except Exception as e:
            export.count(export.failed, type(e).__name__, path.stem)
        if isinstance(song, Song) and song.notes in melodies:
            song = SAME_MELODY
        if isinstance(song, str):
            export.count(export.skipped, song, path.stem)
        elif song:
            melodies.add(song.notes)
            export.write(directory / f"{song.name}.txt", song)
        if on_progress:
            on_progress(done, len(files))
    return export


CORPORA = {"essen": write_essen, "chorales": write_chorales}  # melodygen corpus NAME DIR


def _soprano(score, name: str) -> Song | str:
    """A music21 score's soprano line as a song, or why the notation cannot spell it: the
    first part whose name begins Soprano ("Soprano 1", "Soprano Oboe 1 Violin1"), else the
    first part, from its first note to its last (the rests around them are an orchestra's
    introduction and close, or a bar that pads a pickup)."""
    part = next(
        (p for p in score.parts if any(str(n).startswith("Soprano") for n in (p.partName, p.id))),
        score.parts[0],
    )
    notes = _merged_notes(part.flatten().notesAndRests)
    if isinstance(notes, str):
        return notes
    sounding = [i for i, n in enumerate(notes) if not n.is_rest]
    if not sounding:
        return "no notes"
    notes = notes[sounding[0] : sounding[-1] + 1]
    return Song(tuple(notes), name=name, title=name, time=_meter(part), key=_key(score, part))


def _meter(part) -> tuple[int, int] | None:
    """A music21 part's first time signature: the meter it starts in (an Essen tune's own M:,
    where the flattened score's first can be an overfull bar's that music21 re-barred)."""
    from music21 import meter

    signature = part.recurse().getElementsByClass(meter.TimeSignature).first()
    return (signature.numerator, signature.denominator) if signature else None


def _key(score, part) -> str | None:
    """A music21 part's first key signature as a key of KEYS: music21's key where it gives the
    mode, else the signature's major or relative minor, as the key estimated from all parts of
    the score is (the MusicXML of five chorales has no mode; their soprano lines alone mislead
    theory.key_of, which hears BWV 41.6 in A minor and the whole score in C major)."""
    from music21 import key

    signature = part.recurse().getElementsByClass(key.KeySignature).first()
    if signature is None:
        return None
    mode = getattr(signature, "mode", None)
    if mode not in ("major", "minor"):
        sounds = ((p.midi, n.quarterLength) for n in score.flatten().notes for p in n.pitches)
        estimated = theory.key_of(sounds)
        mode = "minor" if estimated and estimated.islower() else "major"
    name = signature.asKey(mode).tonicPitchNameWithCase
    return name if name in theory.KEYS else None


def _merged_notes(elements) -> list[notation.Note] | str:
    """music21's notes and rests as tokens, each tied run merged into one (write_length: tied
    tokens only where no token has the length), or why the notation cannot spell them (chords,
    grace notes, a length no tokens add up to)."""
    merged = []  # [first element, total quarter length, tie type of the last element]
    for n in elements:
        if n.isChord:
            return "chords"
        if n.duration.isGrace:
            return "grace notes"
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
    return notes
