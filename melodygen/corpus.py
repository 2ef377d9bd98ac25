"""Collections of songs: reading files and directories, skipping what cannot be used (and saying
why), the stable held-out split, and the corpora a user can write out without finding data.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from melodygen import midi, notation
from melodygen.errors import BadInput
from melodygen.files import read_bytes
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
    """One song file, or a MIDI file imported as ``melodygen import`` does."""
    if path.suffix.lower() in midi.SUFFIXES:
        return midi.midi_to_song(read_bytes(path, "MIDI file"), str(path), path.stem)
    return notation.read_song(path)


def _files(directory: Path) -> list[Path]:
    suffixes = SONG_SUFFIXES + midi.SUFFIXES
    found = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, n) for n in names if Path(n).suffix.lower() in suffixes]
    return sorted(found)


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
