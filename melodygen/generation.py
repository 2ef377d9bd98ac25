"""Predicting and composing with any of the four models, the chapter's way, on numpy alone.

A model here is anything with ``reset()`` and ``step(window_inputs) -> probabilities``
(models.Forward); ``table`` maps vocabulary indices to model inputs (encoding.input_table).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from melodygen.errors import MelodygenError

Pick = Callable[[np.ndarray], int]  # next-note probabilities -> chosen vocabulary index


def greedy(probabilities: np.ndarray) -> int:
    """The chapter's np.argmax."""
    return int(np.argmax(probabilities))


def sampler(temperature: float, top_k: int = 0, seed: int | None = None) -> Pick:
    """Sample from the probabilities sharpened (temperature < 1) or flattened (> 1), keeping
    only the ``top_k`` likeliest when top_k > 0. Temperature 0 is greedy."""
    if temperature < 0:
        raise MelodygenError(f"--temperature must be 0 or more, not {temperature:g}")
    if top_k < 0:
        raise MelodygenError(f"--top-k must be 0 or more, not {top_k}")
    if temperature == 0:
        return greedy
    rng = np.random.default_rng(seed)

    def pick(probabilities: np.ndarray) -> int:
        logits = np.log(np.maximum(probabilities.astype(np.float64), 1e-30)) / temperature
        if 0 < top_k < len(logits):
            logits[np.argsort(logits)[:-top_k]] = -np.inf
        p = np.exp(logits - logits.max())
        return int(rng.choice(len(p), p=p / p.sum()))

    return pick


def one_step(model, table: np.ndarray, indices: Sequence[int], window: int) -> list[int]:
    """The true window in, the next note out, for each window of one song (state reset first,
    then carried from window to window, as the chapter's predict(x_train, batch_size=1))."""
    model.reset()
    out = [greedy(model.step(table[indices[i : i + window]])) for i in range(len(indices) - window)]
    model.reset()
    return out


def continue_melody(
    model, table: np.ndarray, seed: Sequence[int], length: int, window: int, pick: Pick = greedy
) -> list[int]:
    """The chapter's full-song loop: each prediction is appended and fed back.

    A seed longer than the window first runs a stateful model through the seed's earlier
    windows, as if it had predicted them. Returns the seed followed by ``length`` notes.
    """
    if len(seed) < window:
        raise MelodygenError(f"the seed has {len(seed)} notes; the model needs at least {window}")
    model.reset()
    melody = list(seed)
    for start in range(len(seed) - window):  # a stateless model just forgets these
        model.step(table[melody[start : start + window]])
    for _ in range(length):
        melody.append(pick(model.step(table[melody[-window:]])))
    model.reset()
    return melody


@dataclass(frozen=True)
class Prediction:
    """One song's one-step and full-song predictions, as vocabulary indices.

    Both start with the song's first window, copied, so they align note for note with it.
    """

    truth: list[int]
    one_step: list[int]
    full_song: list[int]
    window: int

    @property
    def predictions(self) -> int:
        return len(self.truth) - self.window

    def correct(self, mode: str) -> int:
        predicted = getattr(self, mode)
        return sum(
            p == t for p, t in zip(predicted[self.window :], self.truth[self.window :], strict=True)
        )


def predict_song(model, table: np.ndarray, indices: Sequence[int], window: int) -> Prediction:
    first = list(indices[:window])
    return Prediction(
        truth=list(indices),
        one_step=first + one_step(model, table, indices, window),
        full_song=continue_melody(model, table, first, len(indices) - window, window),
        window=window,
    )
