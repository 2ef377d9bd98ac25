"""Evaluating a model against songs: the measures, defined once, and the typed training report.

For every token of every song, the first included, the model gives P(token | the tokens before
it in the song) (a window model sees a start-of-song context for the first ones: models.py).
From these:

- ``accuracy``: the share of predicted tokens whose most likely prediction is right. A window
  model's predictions count from the song's first full window on (the chapter's one-step
  windows); a whole-song model's from the first token.
- ``bits_per_token``: the mean of -log2 P(token) over every token.
- ``pitch_bits_per_note``: the mean over every note (rests stay in the context) of -log2 of
  the probability of its pitch: P summed over the tokens of that MIDI pitch, divided by P
  summed over all note tokens.
- ``duration_bits_per_token``: likewise for the length (duration and dots) of every token,
  rests included, over all note and rest tokens.

The same functions serve ``train`` (report.json), ``evaluate``, ``compare`` and the benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from melodygen.models import Model
from melodygen.notation import Song

BATCH = 256  # songs evaluated side by side through the numpy forward pass


@dataclass(frozen=True)
class Measures:
    """Counts and sums over some songs; the means are properties, so measures add up."""

    songs: int = 0
    tokens: int = 0
    notes: int = 0
    predictions: int = 0  # tokens predicted from a full context (accuracy's denominator)
    one_step_correct: int = 0  # of those, predicted right with the true tokens before them
    full_song_correct: int = 0  # of those, right when the model continues its own predictions
    token_bits: float = 0.0  # sum over tokens of -log2 P(token)
    pitch_bits: float = 0.0  # sum over notes of -log2 P(pitch)
    duration_bits: float = 0.0  # sum over tokens of -log2 P(length)
    unseen_tokens: int = 0  # tokens the model never saw in training
    unseen_pitches: int = 0  # notes whose pitch no vocabulary token has

    def __add__(self, other: Measures) -> Measures:
        return Measures(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def accuracy(self) -> float:
        return self.one_step_correct / self.predictions if self.predictions else math.nan

    @property
    def bits_per_token(self) -> float:
        return self.token_bits / self.tokens if self.tokens else math.nan

    @property
    def pitch_bits_per_note(self) -> float:
        return self.pitch_bits / self.notes if self.notes else math.nan

    @property
    def duration_bits_per_token(self) -> float:
        return self.duration_bits / self.tokens if self.tokens else math.nan

    @property
    def full_song_reproduced(self) -> bool:
        return self.full_song_correct == self.predictions

    def to_json(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "bits_per_token": self.bits_per_token,
            "pitch_bits_per_note": self.pitch_bits_per_note,
            "duration_bits_per_token": self.duration_bits_per_token,
            "songs": self.songs,
            "tokens": self.tokens,
            "notes": self.notes,
            "predictions": self.predictions,
            "one_step_correct": self.one_step_correct,
            "full_song_correct": self.full_song_correct,
            "unseen_tokens": self.unseen_tokens,
            "unseen_pitches": self.unseen_pitches,
        }


@dataclass(frozen=True)
class SongEvaluation:
    """One song against the model: measures and the aligned predictions (vocabulary indices).

    ``one_step`` and ``full_song`` start with the song's first ``window`` tokens, copied, so
    they align token for token with ``truth``.
    """

    song: Song
    truth: list[int]
    one_step: list[int]
    full_song: list[int]
    window: int
    measures: Measures


@dataclass(frozen=True)
class Evaluation:
    songs: list[SongEvaluation]

    @property
    def overall(self) -> Measures:
        return sum((s.measures for s in self.songs), Measures())


def _marginals(model: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(vocabulary, pitches) and (vocabulary, lengths) 0/1 matrices, and for each vocabulary
    entry its pitch column (-1 for a rest) and length column."""
    notes = model.vocab.notes
    pitch = np.array([-1 if n.is_rest else n.midi_pitch for n in notes])
    lengths = sorted({n.beats for n in notes})
    length = np.array([lengths.index(n.beats) for n in notes])
    by_pitch = np.zeros((len(notes), 128))
    by_pitch[pitch >= 0, pitch[pitch >= 0]] = 1
    by_length = np.eye(len(lengths))[length]
    return by_pitch, by_length, pitch, length


def _batch(model: Model, songs: Sequence[Song]) -> list[SongEvaluation]:
    """Songs side by side: one-step log-probabilities over the true tokens, then the full-song
    continuation from each song's first window."""
    window = model.window
    by_pitch, by_length, pitch_of, length_of = _marginals(model)
    truth = [[model.vocab.index(t) for t in s.tokens] for s in songs]
    n = np.array([len(t) for t in truth])
    padded = np.zeros((len(songs), n.max()), np.int64)
    for i, t in enumerate(truth):
        padded[i, : len(t)] = t
    rows = np.arange(len(songs))
    token_bits = np.zeros(padded.shape)
    pitch_bits = np.zeros(padded.shape)
    duration_bits = np.zeros(padded.shape)
    best = np.zeros(padded.shape, np.int64)
    predictor = model.predictor()
    log_probs = predictor.reset(len(songs))
    for t in range(padded.shape[1]):
        target = padded[:, t]
        p = np.exp(log_probs)
        # rests and padding get a pitch column too (the first), then are left out of the sums
        token_bits[:, t] = -log_probs[rows, target] / math.log(2)
        pitch_mass = p @ by_pitch
        note_pitch = np.maximum(pitch_of[target], 0)
        with np.errstate(divide="ignore"):  # a rest's column may have no mass: left out below
            pitch_bits[:, t] = -np.log2(pitch_mass[rows, note_pitch] / pitch_mass.sum(1))
        length_mass = p @ by_length
        duration_bits[:, t] = -np.log2(length_mass[rows, length_of[target]] / length_mass.sum(1))
        best[:, t] = log_probs.argmax(1)
        log_probs = predictor.feed(target)

    full = padded.copy()
    log_probs = predictor.reset(len(songs))
    for t in range(padded.shape[1]):
        if t >= window:
            full[:, t] = log_probs.argmax(1)
        log_probs = predictor.feed(full[:, t])

    results = []
    for i, song in enumerate(songs):
        k = n[i]
        is_note = pitch_of[padded[i, :k]] >= 0
        given = slice(window, k)
        one_step = truth[i][:window] + best[i, window:k].tolist()
        measures = Measures(
            songs=1,
            tokens=int(k),
            notes=int(is_note.sum()),
            predictions=max(int(k) - window, 0),
            one_step_correct=int((best[i, given] == padded[i, given]).sum()),
            full_song_correct=int((full[i, given] == padded[i, given]).sum()),
            token_bits=float(token_bits[i, :k].sum()),
            pitch_bits=float(pitch_bits[i, :k][is_note].sum()),
            duration_bits=float(duration_bits[i, :k].sum()),
        )
        results.append(
            SongEvaluation(song, truth[i], one_step, full[i, :k].tolist(), window, measures)
        )
    return results


def evaluate(model: Model, songs: Sequence[Song]) -> Evaluation:
    """Every song against the model, batched by length so little time goes to padding."""
    order = sorted(range(len(songs)), key=lambda i: len(songs[i].notes))
    results: dict[int, SongEvaluation] = {}
    for start in range(0, len(order), BATCH):
        chunk = order[start : start + BATCH]
        for i, r in zip(chunk, _batch(model, [songs[i] for i in chunk]), strict=True):
            results[i] = r
    return Evaluation([results[i] for i in range(len(songs))])


@dataclass(frozen=True)
class Report:
    """What training did and how well the model fits its songs: report.json's contents."""

    model: str
    songs: list[str]
    epochs: int
    epochs_run: int
    perfect_at: int | None
    train_seconds: float
    seed: int
    units: int
    window: int
    training: Measures
    loss_history: list[float] = field(default_factory=list)  # per epoch
    accuracy_history: list[float] = field(default_factory=list)  # per epoch, during training

    @property
    def final_loss(self) -> float | None:
        return self.loss_history[-1] if self.loss_history else None

    def to_json(self) -> dict:
        t = self.training
        return {
            "model": self.model,
            "songs": self.songs,
            "epochs": self.epochs,
            "epochs_run": self.epochs_run,
            "perfect_at": self.perfect_at,
            "train_seconds": round(self.train_seconds, 3),
            "final_loss": self.final_loss,
            "accuracy": t.accuracy,
            "predictions": t.predictions,
            "one_step_correct": t.one_step_correct,
            "full_song_correct": t.full_song_correct,
            "full_song_reproduced": t.full_song_reproduced,
            "seed": self.seed,
            "units": self.units,
            "window": self.window,
            "measures": {"training": t.to_json()},
            "history": {"loss": self.loss_history, "accuracy": self.accuracy_history},
        }
