"""Tokens to model inputs and labels, as the chapter encodes them, extended to the whole notation.

- Vocabulary: the chapter's fourteen ``code2idx`` tokens first, in the chapter's order, then every
  other token the training songs use, longest first, then from low to high pitch, rests after
  notes of the same length (ties broken by spelling).
- ``index`` inputs (mlp, lstm, stateful): the token's index / (vocabulary size - 1), as the chapter
  divides by 13.
- ``features`` inputs (stateful-features): (pitch, duration) equal to the chapter's
  ``code2features`` on its tokens: pitch = diatonic steps above middle C / 6 (c..b = 0..1; an
  octave adds 7/6; a sharp adds half a step, 1/12, a flat takes it away); duration =
  -log2(beats) (quarter 0, eighth 1, half -1, sixteenth 2, a dot makes it smaller). A rest has
  the duration of its length and pitch REST_STEPS / 6, off the half-step grid so that no note
  has the same features.
- Labels: one-hot over the vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from melodygen.errors import BadInput
from melodygen.notation import LETTERS, MIDDLE_C_OCTAVE, Note, Song, parse_token

CHAPTER_TOKENS = tuple(f"{letter}{d}" for d in (4, 8) for letter in LETTERS)  # code2idx order
MAX_SCALE_VALUE = 6.0  # the chapter's max_scale_value: b is 6 steps above c
REST_STEPS = -1.25  # a rest's pitch, in diatonic steps: between B3 (-1) and B-3 (-1.5)
INPUT_KINDS = ("index", "features")


def _order(token: str) -> tuple:
    note = parse_token(token)
    pitch = -1 if note.is_rest else note.midi_pitch
    return (-note.beats, note.is_rest, pitch, token)


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]

    @classmethod
    def from_songs(cls, songs: Sequence[Sequence[str]]) -> Vocabulary:
        used = {t for song in songs for t in song}
        extra = sorted(used - set(CHAPTER_TOKENS), key=_order)
        return cls(CHAPTER_TOKENS + tuple(extra))

    def __len__(self) -> int:
        return len(self.tokens)

    @cached_property
    def notes(self) -> tuple[Note, ...]:
        return tuple(parse_token(t) for t in self.tokens)

    @cached_property
    def _indices(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def index(self, token: str, parameter: str | None = None) -> int:
        try:
            return self._indices[token]
        except KeyError:
            raise BadInput(
                f"token {token!r} is not in the model's vocabulary "
                f"(allowed: {' '.join(self.tokens)})",
                parameter,
            ) from None


def note_to_features(note: Note) -> tuple[float, float]:
    """(pitch, duration) as the chapter's code2features, extended (see the module docstring)."""
    duration = math.log2(1 / note.beats)
    if note.is_rest:
        return REST_STEPS / MAX_SCALE_VALUE, duration
    steps = LETTERS.index(note.letter) + 7 * (note.octave - MIDDLE_C_OCTAVE) + note.alter / 2
    return steps / MAX_SCALE_VALUE, duration


def input_table(vocab: Vocabulary, inputs: str) -> np.ndarray:
    """Model input for each vocabulary index: (vocabulary size, features) float32."""
    if inputs == "index":
        scale = max(len(vocab) - 1, 1)  # the chapter's max_idx_value = 13
        return (np.arange(len(vocab), dtype=np.float64) / scale)[:, None].astype(np.float32)
    if inputs == "features":
        return np.array([note_to_features(parse_token(t)) for t in vocab.tokens], dtype=np.float32)
    raise ValueError(f"inputs must be one of {INPUT_KINDS}, not {inputs!r}")


def describe(inputs: str, vocab_size: int) -> str:
    """One line for melodygen.json: how a note becomes the model's input."""
    if inputs == "index":
        return f"vocabulary index / {max(vocab_size - 1, 1)}"
    return (
        "(pitch, duration): pitch = diatonic steps above middle C / 6, a sharp +1/12, a flat "
        f"-1/12, a rest {REST_STEPS} / 6; duration = log2(1 / beats)"
    )


def require_windows(songs: Sequence[Song], window: int, doing: str = "train on") -> None:
    """Every song needs one window and the note after it."""
    for song in songs:
        if len(song.notes) <= window:
            raise BadInput(
                f"{song.source}: {len(song.notes)} notes is too short to {doing}: "
                f"a window of {window} needs at least {window + 1}"
            )


def windows(indices: Sequence[int], window: int) -> tuple[np.ndarray, np.ndarray]:
    """The chapter's seq2dataset: every run of ``window`` notes and the note after it.

    Returns (windows, labels): int arrays of shape (len - window, window) and (len - window,).
    """
    idx = np.asarray(indices, dtype=np.int64)
    n = len(idx) - window
    if n < 1:
        raise ValueError(f"a song needs at least window + 1 = {window + 1} notes, not {len(idx)}")
    rows = np.arange(n)[:, None] + np.arange(window)[None, :]
    return idx[rows], idx[window:]


def one_hot(labels: np.ndarray, size: int) -> np.ndarray:
    return np.eye(size, dtype=np.float32)[labels]
