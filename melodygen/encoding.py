"""Tokens as every model kind counts them: the vocabulary, moving a song to another key, and
where in its bar each token starts.

- Vocabulary: the chapter's fourteen ``code2idx`` tokens first, in the chapter's order, then every
  other token the training songs use, longest first, then from low to high pitch, rests after
  notes of the same length (ties broken by spelling), then the special entries the model kind
  uses: ``<end>`` (a song's end, for models that learn where tunes stop) and ``<unk>`` (any
  token the training songs do not use). How a kind turns a token into its input is its own
  (kinds/).

An unseen token is scored as ``<unk>`` spread evenly over the notation's sounds it could be:
P(token) = P(<unk>) / SOUNDS, where SOUNDS = 129 pitch-or-rest classes x 72
written lengths (18 plain, each also as a triplet, tied, or both).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from melodygen.errors import BadInput
from melodygen.notation import LENGTH_CLASSES, Note, Song, parse_token
from melodygen.theory import (
    DEFAULT_METER,
    LETTERS,
    bar_length,
    bar_phase,
    fifths_of,
    key_of,
    octave_of,
    spelled,
)

CHAPTER_TOKENS = tuple(f"{letter}{d}" for d in (4, 8) for letter in LETTERS)  # code2idx order
END = "<end>"  # after a song's last token
UNKNOWN = "<unk>"  # any token the training songs do not use
SPECIALS = (END, UNKNOWN)  # in this order, after the tokens
PITCH_CLASSES = 129  # MIDI pitches 0-127 and the rest
SOUNDS = PITCH_CLASSES * len(LENGTH_CLASSES)  # what <unk> stands for: every pitch-or-rest x length
POSITIONS = 48  # a token's place in its bar is told in 48ths of the bar


def _order(token: str) -> tuple:
    note = parse_token(token)
    pitch = -1 if note.is_rest else note.midi_pitch
    return (-note.beats, note.is_rest, pitch, token)


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]  # song tokens, then the specials this model uses (SPECIALS order)

    @classmethod
    def from_songs(
        cls, songs: Iterable[Sequence[str]], specials: Sequence[str] = (UNKNOWN,)
    ) -> Vocabulary:
        used = {t for song in songs for t in song}
        extra = sorted(used - set(CHAPTER_TOKENS), key=_order)
        return cls(CHAPTER_TOKENS + tuple(extra) + tuple(s for s in SPECIALS if s in specials))

    def __len__(self) -> int:
        return len(self.tokens)

    @cached_property
    def specials(self) -> tuple[str, ...]:
        return tuple(t for t in self.tokens if t in SPECIALS)

    @property
    def song_tokens(self) -> int:
        """How many entries are tokens a song can hold (the specials come after them)."""
        return len(self.tokens) - len(self.specials)

    @cached_property
    def notes(self) -> tuple[Note, ...]:
        """The Note of each song token (specials have none)."""
        return tuple(parse_token(t) for t in self.tokens[: self.song_tokens])

    @cached_property
    def _indices(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def get(self, token: str) -> int | None:
        return self._indices.get(token)

    @property
    def unknown(self) -> int | None:
        return self.get(UNKNOWN)

    @property
    def end(self) -> int | None:
        return self.get(END)

    def index(self, token: str, parameter: str | None = None) -> int:
        """A token the model must know (a seed); BadInput naming the nearest it knows otherwise."""
        index = self.get(token)
        if token in SPECIALS:
            raise BadInput(f"{token!r} is not in the model's vocabulary of song tokens", parameter)
        if index is None:
            raise BadInput(
                f"token {token!r} is not in the model's vocabulary: the nearest it knows are "
                f"{' '.join(self.nearest(token))}{self._range_hint(token)}",
                parameter,
            )
        return index

    def nearest(self, token: str, count: int = 5) -> list[str]:
        """The known song tokens closest to ``token``: in pitch (semitones), then in length
        (each doubling or halving counts as two semitones)."""
        wanted = parse_token(token)

        def distance(note: Note) -> float:
            if note.is_rest or wanted.is_rest:
                pitch = 0 if note.is_rest == wanted.is_rest else 100
            else:
                pitch = abs(note.midi_pitch - wanted.midi_pitch)
            return pitch + 2 * abs(math.log2(note.beats / wanted.beats))

        ranked = sorted(range(len(self.notes)), key=lambda i: (distance(self.notes[i]), i))
        return [self.tokens[i] for i in ranked[:count]]

    def _range_hint(self, token: str) -> str:
        note = parse_token(token)
        pitches = [n.midi_pitch for n in self.notes if not n.is_rest]
        if note.is_rest or not pitches or min(pitches) <= note.midi_pitch <= max(pitches):
            return ""
        low, high = min(pitches), max(pitches)
        return (
            f" (its notes go from MIDI pitch {low} to {high}: transpose the seed into that range)"
        )

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Song tokens to indices; a token the vocabulary lacks becomes <unk>."""
        unknown = self.unknown
        return [self._indices.get(t, unknown) for t in tokens]  # type: ignore[misc]

    def check(self) -> None:
        """ValueError unless every entry is a canonical token or a special, specials last."""
        if not self.tokens or len(set(self.tokens)) != len(self.tokens):
            raise ValueError("the vocabulary must be non-empty, without repeats")
        if self.tokens[self.song_tokens :] != self.specials or not self.song_tokens:
            raise ValueError(f"special entries {', '.join(SPECIALS)} go after the tokens, once")
        for token in self.tokens[: self.song_tokens]:
            try:
                if parse_token(token).token != token:
                    raise ValueError
            except ValueError:
                raise ValueError(f"vocabulary entry {token!r} is not a token") from None


def transpose(notes: Sequence[Note], semitones: int) -> tuple[Note, ...] | None:
    """The notes moved by ``semitones``, spelled for their new key; None if a pitch would leave
    MIDI's range.

    Moving by s semitones moves every spelling by f fifths with 7f = s (mod 12), which keeps
    the song's intervals spelled as they were; of the two candidates (f and f - 12) the one
    giving the song the fewest accidentals (weighted by length) wins, so E minor goes to
    F minor with flats, not to E# minor, and never spells a g- in E minor.
    """
    if semitones == 0:
        return tuple(notes)
    pitched = [n for n in notes if not n.is_rest]
    if pitched and not 0 <= min(n.midi_pitch for n in pitched) + semitones <= 127:  # type: ignore[operator]
        return None
    if pitched and not 0 <= max(n.midi_pitch for n in pitched) + semitones <= 127:  # type: ignore[operator]
        return None

    def accidentals(f: int) -> float:
        return sum(abs((fifths_of(n.letter, n.alter) + f + 1) // 7) * n.beats for n in pitched)

    f0 = (7 * semitones) % 12
    shift = min((f0, f0 - 12), key=lambda f: (accidentals(f), abs(f)))
    return tuple(note if note.is_rest else _moved(note, shift, semitones) for note in notes)


@functools.lru_cache(maxsize=1 << 16)
def _moved(note: Note, shift: int, semitones: int) -> Note:
    """A note moved ``shift`` fifths (``semitones`` semitones), one object for every song that
    has it: a corpus under 12 transpositions is millions of notes, but a few thousand distinct
    ones (2.3 GB of copies for the Essen tunes, before)."""
    q = fifths_of(note.letter, note.alter) + shift
    while (q + 1) // 7 > 2:  # beyond a double sharp: the enharmonic spelling
        q -= 12
    while (q + 1) // 7 < -2:
        q += 12
    letter, alter = spelled(q)
    octave = octave_of(note.midi_pitch + semitones, letter, alter)  # type: ignore[operator]
    return dataclasses.replace(note, letter=letter, octave=octave, alter=alter)


def meter_of(song: Song) -> tuple[int, int]:
    """The song's time signature; 4/4 for a song without one."""
    return song.time or DEFAULT_METER


def times(notes: Sequence[Note]) -> tuple[np.ndarray, np.ndarray]:
    """When each note or rest starts and ends, in quarter notes from the song's start."""
    beats = np.array([n.beats for n in notes], np.float64)
    ends = np.cumsum(beats)
    return ends - beats, ends


@dataclass(frozen=True)
class Start:
    """How a song starts, as a predictor is told before its first token: its meter, where its
    bar lines fall (theory.bar_phase: quarter notes after its start; 0: it starts on one), and
    its key (theory.KEYS; None: not known)."""

    meter: tuple[int, int] = DEFAULT_METER
    phase: float = 0.0
    key: str | None = None

    @property
    def bar(self) -> float:
        return bar_length(self.meter)

    @classmethod
    def of(cls, song: Song, estimate: bool = False) -> Start:
        """A song's meter, the bar lines its notes fit best (the notation writes no pickup),
        and its key: header; with ``estimate``, the key its notes suggest when it has none
        (theory.key_of: for training, never for predicting the notes it was estimated from)."""
        meter = meter_of(song)
        starts, ends = times(song.notes)
        sounding = np.array([not n.is_rest for n in song.notes], bool)
        phase = bar_phase(starts[sounding], ends[sounding], bar_length(meter))
        if song.key or not estimate:
            return cls(meter, phase, song.key)
        return cls(meter, phase, key_of((n.midi_pitch, n.beats) for n in song.notes if n.letter))
