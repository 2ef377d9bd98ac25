"""The song notation (docs/notation.md): tokens like ``g8``, ``f'#8.`` or ``r4`` to notes and back.

The chapter's tokens are the base case; the rest follows music21's tinyNotation, so a song file
is also, note for note, a tinyNotation string.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from melodygen.errors import BadInput
from melodygen.files import read_bytes

LETTERS = "cdefgab"  # the chapter's order: the index is the diatonic step within an octave
LETTER_SEMITONES = (0, 2, 4, 5, 7, 9, 11)  # semitones above C of each letter
DURATIONS = (1, 2, 4, 8, 16, 32)  # note values: whole, half, quarter, eighth, 16th, 32nd
DOT_FACTORS = (1.0, 1.5, 1.75)  # length factor for 0, 1 and 2 dots
LENGTHS = tuple(sorted({4 / d * f for d in DURATIONS for f in DOT_FACTORS}))  # in beats: 18
ACCIDENTALS = {"##": 2, "#": 1, "--": -2, "-": -1}  # spelling -> semitones
ALTER_SPELLING = {v: k for k, v in ACCIDENTALS.items()} | {0: ""}
HEADER_KEYS = ("title", "tempo", "time", "program")
DIGITS = "0123456789"  # str.isdigit also takes superscripts, which int() rejects
MAX_NUMERATOR = 255  # a MIDI time signature holds any numerator up to a byte (Essen has 116/4)
DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)
# Characters a one-line title cannot hold (a tab can stay); NUL made a written song unreadable.
CONTROL = {chr(c) for c in range(32)} - {"\t"} | {"\x7f", "\x85", "\u2028", "\u2029"}
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # for people
MIDDLE_C_OCTAVE = 4  # c (no marks) is C4 = MIDI 60

_SEPARATORS = re.compile(r"[\s,|]+")
_HEADER = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*:(.*)$")


@dataclass(frozen=True, order=True)
class Note:
    """One note or rest as written: its spelling, and from it its MIDI pitch and length in beats."""

    letter: str | None  # "c".."b", or None for a rest
    duration: int = 4  # note value: 4 = quarter (one beat), 8 = eighth, ...
    dots: int = 0  # 0, 1 (x1.5) or 2 (x1.75)
    octave: int = MIDDLE_C_OCTAVE  # scientific octave of the letter: c4 = middle C
    alter: int = 0  # semitones: +1 sharp, -1 flat, +-2 double

    def __post_init__(self) -> None:
        if self.letter is not None and self.letter not in LETTERS:
            raise ValueError(f"letter must be one of {LETTERS!r} or None, not {self.letter!r}")
        if self.duration not in DURATIONS:
            raise ValueError(f"duration must be one of {DURATIONS}, not {self.duration!r}")
        if self.dots not in (0, 1, 2):
            raise ValueError(f"dots must be 0, 1 or 2, not {self.dots!r}")
        if self.alter not in ALTER_SPELLING:
            raise ValueError(f"alter must be between -2 and 2, not {self.alter!r}")
        if self.letter is None and (self.octave, self.alter) != (MIDDLE_C_OCTAVE, 0):
            raise ValueError("a rest has no octave or accidental")
        if self.letter is not None and not 0 <= self.midi_pitch <= 127:
            raise ValueError(f"pitch {self.midi_pitch} is outside MIDI's 0-127")

    @property
    def is_rest(self) -> bool:
        return self.letter is None

    @property
    def midi_pitch(self) -> int | None:
        """MIDI note number (middle C = 60), None for a rest."""
        if self.letter is None:
            return None
        step = LETTERS.index(self.letter)
        return 12 * (self.octave + 1) + LETTER_SEMITONES[step] + self.alter

    @property
    def beats(self) -> float:
        """Length in quarter notes; exact in binary floating point (all values are dyadic)."""
        return 4 / self.duration * DOT_FACTORS[self.dots]

    @property
    def token(self) -> str:
        """The canonical spelling: parse_token(note.token) == note."""
        tail = f"{self.duration}{'.' * self.dots}"
        if self.letter is None:
            return "r" + tail
        if self.octave >= MIDDLE_C_OCTAVE:
            name = self.letter + "'" * (self.octave - MIDDLE_C_OCTAVE)
        else:
            name = self.letter.upper() * (MIDDLE_C_OCTAVE - self.octave)
        return name + ALTER_SPELLING[self.alter] + tail

    def __str__(self) -> str:
        return self.token


@dataclass(frozen=True)
class Song:
    """A melody and its header. Header fields are None when the file does not give them."""

    notes: tuple[Note, ...]
    name: str = "song"  # the file's stem: names outputs and reports
    title: str | None = None
    tempo: float | None = None  # quarter notes per minute
    time: tuple[int, int] | None = None  # time signature, e.g. (2, 4)
    program: int | None = None  # General MIDI program 0-127
    source: str = field(default="<string>", compare=False)  # where it was read from, for errors

    def __post_init__(self) -> None:
        if not isinstance(self.notes, tuple) or not all(isinstance(n, Note) for n in self.notes):
            raise ValueError("notes must be a tuple of Note")
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, not {self.name!r:.40}")
        for key in HEADER_KEYS:
            if getattr(self, key) is not None:
                check_header(key, getattr(self, key))

    @property
    def tokens(self) -> list[str]:
        return [n.token for n in self.notes]


class TokenError(ValueError):
    """A token that is not in the notation; ``offset`` is where in the token it goes wrong."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


@functools.lru_cache(maxsize=4096)  # songs repeat a few hundred tokens: parse each once
def parse_token(text: str) -> Note:
    """Parse one token such as ``g8``, ``C#4``, ``b'-8.`` or ``r4``; TokenError if it is not."""
    if not text:
        raise TokenError("empty token")
    i = 0
    head = text[0]
    octave, alter, letter = MIDDLE_C_OCTAVE, 0, None
    if head == "r":
        i = 1
    elif head in LETTERS:
        letter = head
        i = 1
        while i < len(text) and text[i] == "'":
            i += 1
        octave += i - 1
    elif head.lower() in LETTERS and head.isupper():
        letter = head.lower()
        while i < len(text) and text[i] == head:
            i += 1
        octave -= i
        if i < len(text) and text[i] == "'":
            raise TokenError("octave marks (') go after lowercase letters only", i)
    else:
        raise TokenError(f"unknown pitch letter {head!r} (expected a-g, A-G, or r for a rest)", 0)
    if letter is not None and text[i : i + 1] == "b" and text[i + 1 : i + 2] in (*DIGITS, ""):
        suggestion = text[: i - 1] + text[i - 1].lower() + "-" + (text[i + 1 :] or "4")
        raise TokenError(f"flats are written with '-': {suggestion}", i)
    if i < len(text) and text[i] in "#-":
        j = i
        while j < len(text) and text[j] in "#-":
            j += 1
        spelling = text[i:j]
        if letter is None:
            raise TokenError("a rest takes no accidental", i)
        if spelling not in ACCIDENTALS:
            raise TokenError(f"bad accidental {spelling!r} (expected #, ##, - or --)", i)
        alter = ACCIDENTALS[spelling]
        i = j
    j = i
    while j < len(text) and text[j] in DIGITS:
        j += 1
    if j == i:
        found = f"found {text[i]!r}" if i < len(text) else f"none after {text!r}"
        hint = f" (a note needs one: {text}4 is a quarter note)" if i == len(text) else ""
        raise TokenError(f"expected a duration (1, 2, 4, 8, 16 or 32), {found}{hint}", i)
    duration = int(text[i:j])
    if duration not in DURATIONS:
        hint = ""
        if letter is not None and j - i == 1 and j == len(text):  # c5: an octave, not a length
            with contextlib.suppress(ValueError):
                meant = Note(letter, 4, 0, duration, alter)
                name = letter.upper() + {1: "#", 2: "##", -1: "b", -2: "bb", 0: ""}[alter]
                hint = f"; octaves are written with case and ': {meant.token} is {name}{duration}"
        raise TokenError(f"duration {text[i:j]} is not allowed (use 1, 2, 4, 8, 16 or 32){hint}", i)
    i = j
    dots = 0
    while i < len(text) and text[i] == ".":
        dots += 1
        i += 1
    if dots > 2:
        raise TokenError("at most two dots", i - dots)
    if i < len(text):
        raise TokenError(f"unexpected {text[i:]!r} after {text[:i]!r}", i)
    try:
        return Note(letter, duration, dots, octave, alter)
    except ValueError as e:
        raise TokenError(str(e)) from None


def check_header(key: str, value: object) -> None:
    """A header value as a Song holds it; ValueError naming the value and what was expected."""
    if key == "title":
        if not isinstance(value, str) or CONTROL & set(value):
            raise ValueError(f"a title is one line of text, not {value!r:.60}")
    elif key == "tempo":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 1000:
            raise ValueError(
                f"tempo must be between 1 and 1000 quarter notes per minute, not {value!r:.40}"
            )
    elif key == "time":
        if (
            not isinstance(value, tuple)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not 1 <= value[0] <= MAX_NUMERATOR
            or value[1] not in DENOMINATORS
        ):
            raise ValueError(f"time must be a time signature such as 2/4 or 6/8, not {value!r:.40}")
    elif key == "program":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 127:
            raise ValueError(f"program must be a General MIDI program number 0-127, not {value!r}")
    else:
        raise ValueError(f"unknown header key {key!r} (expected one of: {', '.join(HEADER_KEYS)})")


def header_value(key: str, text: str) -> object:
    """Parse one header line's value; raise ValueError with what was expected."""
    value: object = text
    if key == "tempo":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"tempo must be a number of quarter notes per minute, not {text!r}"
            ) from None
    elif key == "time":
        m = re.fullmatch(r"([0-9]{1,3})\s*/\s*([0-9]{1,2})", text)
        value = (int(m[1]), int(m[2])) if m else text
        if not m or not 1 <= value[0] <= MAX_NUMERATOR or value[1] not in DENOMINATORS:
            raise ValueError(f"time must be a time signature such as 2/4 or 6/8, not {text!r}")
    elif key == "program":
        value = int(text) if re.fullmatch("[0-9]{1,3}", text) else text
    check_header(key, value)
    return value


def parse_song(text: str, source: str = "<string>", name: str | None = None) -> Song:
    """Parse a whole song file's text; errors name ``source``, the line and the column."""
    if text.startswith("\ufeff"):
        text = text[1:]
    notes: list[Note] = []
    header: dict[str, object] = {}
    # Lines end at \n only (as editors count them), not at the other breaks splitlines knows.
    for lineno, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        m = _HEADER.match(line)
        if m and not notes and not line.lstrip().startswith("#"):
            key, value = m[1], m[2].strip()
            column = line.index(key) + 1
            if key in header:
                raise BadInput(f"{source}:{lineno}:{column}: header {key!r} given twice")
            try:
                header[key] = header_value(key, value)
            except ValueError as e:
                col = column if key not in HEADER_KEYS else line.index(":") + 2
                raise BadInput(f"{source}:{lineno}:{col}: {e}") from None
            continue
        pos = 0
        for sep in _SEPARATORS.finditer(line + " "):
            token, column = line[pos : sep.start()], pos + 1
            pos = sep.end()
            if not token:
                continue
            if token.startswith("#"):
                break
            if m and ":" in token:
                raise BadInput(
                    f"{source}:{lineno}:{column}: header line {line.strip()!r} must come "
                    "before the first note"
                )
            try:
                notes.append(parse_token(token))
            except TokenError as e:
                raise BadInput(
                    f"{source}:{lineno}:{column + e.offset}: bad token {token!r}: {e}"
                ) from None
    return Song(
        notes=tuple(notes),
        name=name or "song",
        source=source,
        **header,  # type: ignore[arg-type]
    )


def read_song(path: str | os.PathLike[str]) -> Song:
    """Read one song file (UTF-8, a leading BOM allowed)."""
    path = Path(path)
    data = read_bytes(path, "song file")
    if b"\0" in data:
        raise BadInput(f"{path}: is a binary file, not a song (expected UTF-8 text)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        line_start = data.rfind(b"\n", 0, e.start) + 1
        column = len(data[line_start : e.start].decode("utf-8")) + 1  # characters, not bytes
        raise BadInput(
            f"{path}:{line}:{column}: not UTF-8 text (byte 0x{data[e.start]:02x})"
        ) from None
    song = parse_song(text, source=str(path), name=path.stem)
    if not song.notes:
        raise BadInput(f"{path}: no notes (the song is empty or only comments and header)")
    return song


def format_song(song: Song, bars_per_line: int = 4) -> str:
    """Song text with its header, a ``|`` at each bar line that falls between notes."""
    lines = []
    if song.title is not None:
        lines.append(f"title: {song.title}")
    if song.tempo is not None:
        lines.append(f"tempo: {song.tempo:g}")
    if song.time is not None:
        lines.append(f"time: {song.time[0]}/{song.time[1]}")
    if song.program is not None:
        lines.append(f"program: {song.program}")
    numerator, denominator = song.time or (4, 4)
    bar_beats = numerator * 4 / denominator
    line: list[str] = []
    beats = 0.0
    for note in song.notes:
        line.append(note.token)
        beats += note.beats
        bars, within = divmod(beats, bar_beats)
        if within == 0 and bars % bars_per_line == 0:
            lines.append(" ".join(line))
            line = []
        elif within == 0:
            line.append("|")
    if line:
        lines.append(" ".join(line).removesuffix(" |"))
    return "\n".join(lines) + "\n"


def parse_tokens(text: str, source: str = "<tokens>") -> list[Note]:
    """Parse a list of tokens such as the command line's ``g8,e8,e4,f8``."""
    return list(parse_song(text, source=source).notes)


def pitch_name(pitch: int) -> str:
    """A MIDI pitch as people read it on a chart: 60 is C4, 70 is Bb4."""
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"
