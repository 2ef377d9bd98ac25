"""The song notation (docs/notation.md): tokens like ``g8``, ``f'#8.`` or ``r4`` to notes and back.

The chapter's tokens are the base case; the rest follows music21's tinyNotation, so a song file
is also, note for note, a tinyNotation string.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from melodygen.errors import BadInput
from melodygen.files import read_bytes
from melodygen.theory import ACCIDENTALS, ALTER_SPELLING, KEYS, LETTER_SEMITONES, LETTERS

DURATIONS = (1, 2, 4, 8, 16, 32)  # note values: whole, half, quarter, eighth, 16th, 32nd
DOT_FACTORS = (Fraction(1), Fraction(3, 2), Fraction(7, 4))  # length factor for 0, 1, 2 dots
TRIPLET = Fraction(2, 3)  # trip{...}: three notes in the time of two
TIE = "~"  # after a note: it is held into the next, which has the same pitch
TRIPLET_OPEN, TRIPLET_CLOSE = "trip{", "}"
HEADER_KEYS = ("title", "tempo", "time", "program", "key")
DIGITS = "0123456789"  # str.isdigit also takes superscripts, which int() rejects
MAX_NUMERATOR = 255  # a MIDI time signature holds any numerator up to a byte (Essen has 116/4)
DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)
# Characters a one-line title cannot hold (a tab can stay); NUL made a written song unreadable.
CONTROL = {chr(c) for c in range(32)} - {"\t"} | {"\x7f", "\x85", "\u2028", "\u2029"}
MIDDLE_C_OCTAVE = 4  # c (no marks) is C4 = MIDI 60


_CONTROL_RUN = re.compile(f"[{re.escape(''.join(sorted(CONTROL)))}\t\x80-\x9f]+")  # and C1
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
    tie: bool = False  # held into the next note (c4~ c4 sounds as one half note)
    triplet: bool = False  # in a trip{...} group: two thirds of its written length

    def __post_init__(self) -> None:
        if self.letter is not None and self.letter not in LETTERS:
            raise ValueError(f"letter must be one of {LETTERS!r} or None, not {self.letter!r}")
        if self.duration not in DURATIONS:
            raise ValueError(f"duration must be one of {DURATIONS}, not {self.duration!r}")
        if self.dots not in (0, 1, 2):
            raise ValueError(f"dots must be 0, 1 or 2, not {self.dots!r}")
        if self.alter not in ALTER_SPELLING:
            raise ValueError(f"alter must be between -2 and 2, not {self.alter!r}")
        if self.letter is None and (self.octave, self.alter, self.tie) != (MIDDLE_C_OCTAVE, 0, 0):
            raise ValueError("a rest has no octave, accidental or tie")
        if self.letter is not None and not 0 <= self.midi_pitch <= 127:
            raise ValueError(f"pitch {self.midi_pitch} is outside MIDI's 0-127")

    @property
    def is_rest(self) -> bool:
        return self.letter is None

    @functools.cached_property
    def midi_pitch(self) -> int | None:
        """MIDI note number (middle C = 60), None for a rest."""
        if self.letter is None:
            return None
        step = LETTERS.index(self.letter)
        return 12 * (self.octave + 1) + LETTER_SEMITONES[step] + self.alter

    @functools.cached_property  # notes are shared (parse_token caches them): compute once
    def length(self) -> Fraction:
        """Length in quarter notes, exactly (a triplet eighth is 1/3)."""
        return (
            Fraction(4, self.duration) * DOT_FACTORS[self.dots] * (TRIPLET if self.triplet else 1)
        )

    @functools.cached_property
    def beats(self) -> float:
        return float(self.length)

    @property
    def length_class(self) -> int:
        """The token's written length (value, dots, triplet, tie) as an index of LENGTH_CLASSES."""
        return _LENGTH_INDEX[self.duration, self.dots, self.triplet, self.tie]

    @functools.cached_property
    def token(self) -> str:
        """The canonical spelling: parse_token(note.token) == note."""
        tail = f"{self.duration}{'.' * self.dots}{TIE * self.tie}"
        if self.letter is None:
            text = "r" + tail
        elif self.octave >= MIDDLE_C_OCTAVE:
            text = self.letter + "'" * (self.octave - MIDDLE_C_OCTAVE)
        else:
            text = self.letter.upper() * (MIDDLE_C_OCTAVE - self.octave)
        if self.letter is not None:
            text += ALTER_SPELLING[self.alter] + tail
        return TRIPLET_OPEN + text + TRIPLET_CLOSE if self.triplet else text

    def __str__(self) -> str:
        return self.token


# Every written length a token can have: the plain ones first, shortest first (the order models
# trained before ties and triplets existed use), then triplets, ties, and tied triplets.
LENGTH_CLASSES = tuple(
    (duration, dots, triplet, tie)
    for triplet, tie in ((False, False), (True, False), (False, True), (True, True))
    for duration, dots in sorted(
        itertools.product(DURATIONS, range(3)), key=lambda c: Fraction(4, c[0]) * DOT_FACTORS[c[1]]
    )
)
_LENGTH_INDEX = {c: i for i, c in enumerate(LENGTH_CLASSES)}


LENGTH_UNITS = 24  # per beat: every plain or triplet length write_length writes is whole units
REST = Note(None)
# The token lengths write_length uses, longest first, in LENGTH_UNITS: plain values (dotted
# where that is whole units) and undotted triplets (a dotted triplet is as long as a plain note).
_PIECES = sorted(
    (
        (int(n.length * LENGTH_UNITS), n.duration, n.dots, n.triplet)
        for n in (
            Note(None, d, dots, triplet=t)
            for d in DURATIONS
            for dots in range(3)
            for t in (False, True)
            if not (t and dots)
        )
        if (n.length * LENGTH_UNITS).denominator == 1
    ),
    reverse=True,
)
_DIRECT = 6 * 4 * LENGTH_UNITS  # longer lengths start with the longest token until this is left


@functools.cache
def _splits() -> list[tuple | None]:
    """For each length up to _DIRECT, its pieces (length, duration, dots, triplet): the fewest,
    then the fewest triplets, then the longest first."""
    best: list[tuple | None] = [()] + [None] * _DIRECT
    for n in range(1, _DIRECT + 1):
        options = [
            tuple(sorted((*best[n - piece[0]], piece), reverse=True))  # type: ignore[misc]
            for piece in _PIECES
            if piece[0] <= n and best[n - piece[0]] is not None
        ]
        if options:
            best[n] = min(options, key=lambda o: (len(o), sum(p[3] for p in o), [-p[0] for p in o]))
    return best


def write_length(note: Note, beats: Fraction) -> tuple[Note, ...]:
    """``note``'s pitch (or a rest) lasting ``beats``, in the fewest tokens, then the fewest
    triplets, then the longest first, tied into each other: one token where one has the length.
    A length is always written the same way, so an imported song rendered and imported again
    keeps its tokens. ValueError if no tokens add up to it (it is not whole 1/24s of a beat)."""
    units = beats * LENGTH_UNITS
    longest = _PIECES[0]
    whole = max(0, -(-(units - _DIRECT) // longest[0]))
    rest = _splits()[int(units - whole * longest[0])] if units.denominator == 1 else None
    if rest is None:
        raise ValueError(f"no tokens add up to {beats} beats")
    pieces = [longest] * whole + list(rest)
    return tuple(
        dataclasses.replace(
            note, duration=d, dots=dots, triplet=t, tie=not note.is_rest and i < len(pieces) - 1
        )
        for i, (_, d, dots, t) in enumerate(pieces)
    )


def merge_ties(notes: Sequence[Note]) -> tuple[Note, ...]:
    """The notes as models learn them: each run of notes tied into the same pitch rewritten by
    write_length, so ``c4~ c8`` is ``c4.`` and only a length no token has stays tied; a tie
    into another pitch or a rest, which holds nothing, is dropped. On held-out Essen tunes with
    ties this costs an n-gram 0.15 bits per sounding note less than ties as written
    (benchmarks/ties.py)."""
    out: list[Note] = []
    i = 0
    while i < len(notes):
        j = i
        while (
            notes[j].tie and j + 1 < len(notes) and notes[j + 1].midi_pitch == notes[i].midi_pitch
        ):
            j += 1
        run = notes[i : j + 1]
        if not run[-1].tie and len(run) == 1:  # no tie: as written
            out.append(run[0])
            i += 1
            continue
        try:
            out += write_length(run[0], sum((n.length for n in run), Fraction(0)))
        except ValueError:  # a length off the 1/24 grid (c32.~ c8): kept as written
            out += run[:-1]
            out.append(dataclasses.replace(run[-1], tie=False))
        i = j + 1
    return tuple(out)


@dataclass(frozen=True)
class Song:
    """A melody and its header. Header fields are None when the file does not give them."""

    notes: tuple[Note, ...]
    name: str = "song"  # the file's stem: names outputs and reports
    title: str | None = None
    tempo: float | None = None  # quarter notes per minute
    time: tuple[int, int] | None = None  # time signature, e.g. (2, 4)
    program: int | None = None  # General MIDI program 0-127
    key: str | None = None  # a name of KEYS: "G", "f#" (minor), "E-"
    source: str = field(default="<string>", compare=False)  # where it was read from, for errors

    def __post_init__(self) -> None:
        notes = self.notes
        if not isinstance(notes, tuple) or not all(map(isinstance, notes, itertools.repeat(Note))):
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
    """Parse one token such as ``g8``, ``C#4``, ``b'-8.``, ``r4``, ``c4~`` or ``trip{c8}``;
    TokenError if it is not."""
    if text.startswith(TRIPLET_OPEN) and text.endswith(TRIPLET_CLOSE):
        try:
            note = parse_token(text[len(TRIPLET_OPEN) : -len(TRIPLET_CLOSE)])
        except TokenError as e:
            raise TokenError(str(e), e.offset + len(TRIPLET_OPEN)) from None
        if note.triplet:
            raise TokenError("triplets do not nest", len(TRIPLET_OPEN))
        return dataclasses.replace(note, triplet=True)
    if text.endswith(TIE) and len(text) > 1:
        note = parse_token(text[:-1])
        if note.is_rest:
            raise TokenError("a rest cannot be tied (~ holds a note into the next)", len(text) - 1)
        if note.tie or note.triplet:
            raise TokenError("unexpected '~'", len(text) - 1)
        return dataclasses.replace(note, tie=True)
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


def one_line(text: str, limit: int = 200) -> str:
    """Text from elsewhere (a MIDI track name, a score's title) as a title can hold it: control
    characters, C1's too, become spaces; runs of space become one."""
    return " ".join(_CONTROL_RUN.sub(" ", text).split())[:limit]


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
    elif key == "key":
        if value not in KEYS:
            hint = ""
            if isinstance(value, str) and value[1:] in ("b", "B") and value[0].lower() in LETTERS:
                hint = f" (flats are written with '-': {value[0]}-)"
            raise ValueError(
                f"key must be a key such as G, E- (major) or f#, b- (minor) with at most seven "
                f"sharps or flats, not {value!r:.40}{hint}"
            )
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
    group: str | None = None  # where the open trip{ group began
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
            # trip{c8 d8 e8}: a group opens and closes around tokens
            opens = token.startswith(TRIPLET_OPEN)
            if group and token.removeprefix(TRIPLET_OPEN * opens).startswith(TRIPLET_OPEN):
                opens = True
            if opens and group:
                raise BadInput(f"{source}:{lineno}:{column}: triplets do not nest ({token!r})")
            if opens:
                group = f"{lineno}:{column}"
                token, column = token[len(TRIPLET_OPEN) :], column + len(TRIPLET_OPEN)
            closes = token.endswith(TRIPLET_CLOSE)
            if closes and not group:
                raise BadInput(f"{source}:{lineno}:{column}: '}}' closes no trip{{ group")
            token = token.removesuffix(TRIPLET_CLOSE)
            if token:
                try:
                    note = parse_token(token)
                except TokenError as e:
                    raise BadInput(
                        f"{source}:{lineno}:{column + e.offset}: bad token {token!r}: {e}"
                    ) from None
                notes.append(dataclasses.replace(note, triplet=True) if group else note)
            if closes:
                group = None
    if group:
        raise BadInput(f"{source}:{group}: trip{{ is never closed with '}}'")
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
    """Song text with its header, a ``|`` at each bar line that falls between notes, and each
    run of triplet notes within a bar in one ``trip{...}`` group."""
    lines = []
    if song.title is not None:
        lines.append(f"title: {song.title}")
    if song.tempo is not None:
        lines.append(f"tempo: {song.tempo:g}")
    if song.time is not None:
        lines.append(f"time: {song.time[0]}/{song.time[1]}")
    if song.key is not None:
        lines.append(f"key: {song.key}")
    if song.program is not None:
        lines.append(f"program: {song.program}")
    return "\n".join(lines + format_body(song, bars_per_line)) + "\n"


def format_body(song: Song, bars_per_line: int | None = 4) -> list[str]:
    """The song's tokens as lines of ``bars_per_line`` bars (None: one line), a ``|`` at each
    bar line of its meter (bars counted from its first note) that falls between notes."""
    numerator, denominator = song.time or (4, 4)
    bar = Fraction(4 * numerator, denominator)
    lines, line = [], []
    beats = Fraction(0)
    for i, note in enumerate(song.notes):
        text = note.token
        if note.triplet:  # one group for the run: trip{ on its first note, } on its last
            text = text.removeprefix(TRIPLET_OPEN).removesuffix(TRIPLET_CLOSE)
            if i == 0 or not song.notes[i - 1].triplet or beats % bar == 0:
                text = TRIPLET_OPEN + text
        beats += note.length
        bars, within = divmod(beats, bar)
        last = i + 1 == len(song.notes)
        if note.triplet and (last or not song.notes[i + 1].triplet or within == 0):
            text += TRIPLET_CLOSE
        line.append(text)
        if within == 0 and bars_per_line and bars % bars_per_line == 0:
            lines.append(" ".join(line))
            line = []
        elif within == 0:
            line.append("|")
    if line:
        lines.append(" ".join(line).removesuffix(" |"))
    return lines


def parse_tokens(text: str, source: str = "<tokens>") -> list[Note]:
    """Parse a list of tokens such as the command line's ``g8,e8,e4,f8``."""
    return list(parse_song(text, source=source).notes)
