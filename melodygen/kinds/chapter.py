"""The chapter's own training and prediction loops, kept as the reference that the window
kinds' fast loop is checked against (tests) and timed against (benchmarks). Not used by the
CLI."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from melodygen.kinds.window import Dataset, WindowKind, epoch_order, reset_states
from melodygen.training import setup_tensorflow


def compile_model(model) -> None:
    """The chapter's compile; Keras's fit then uses its default XLA compilation."""
    setup_tensorflow()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])


def fit(
    model, kind: WindowKind, data: Dataset, epochs: int, seed: int | None = None
) -> list[float]:
    """Train as the chapter does; returns the loss of each epoch.

    Stateful models: ``epochs`` times fit(epochs=1, batch_size=1, shuffle=False), then
    reset_states(). Stateless models: with ``seed`` None, the chapter's single
    fit(epochs=...) with Keras's own shuffling; with a seed, one fit per epoch on the windows
    in melodygen's order for that epoch, so the two loops see the same batches.
    """
    if data.song_starts.sum() != 1:
        raise ValueError("the chapter's loop trains on one song")
    x, y = data.x, data.y_one_hot
    if not kind.stateful and seed is None:
        history = model.fit(x, y, epochs=epochs, batch_size=kind.spec.batch, verbose=0)
        return history.history["loss"]
    losses = []
    for epoch in range(epochs):
        order = epoch_order(seed or 0, epoch, len(y), kind)
        history = model.fit(
            x[order], y[order], epochs=1, batch_size=kind.spec.batch, verbose=0, shuffle=False
        )
        losses += history.history["loss"]
        reset_states(model)
    return losses


def continue_melody(
    model, table: np.ndarray, seed: Sequence[int], length: int, window: int
) -> list[int]:
    """The chapter's full-song prediction: one model.predict per note, fed back."""
    reset_states(model)
    melody = list(seed)
    for _ in range(length):
        sample = table[melody[-window:]][None]  # (1, window, features)
        melody.append(int(np.argmax(model.predict(sample, verbose=0))))
    reset_states(model)
    return melody


def load_model(path):
    _, keras = setup_tensorflow()
    return keras.models.load_model(path)
