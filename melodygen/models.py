"""The chapter's four models: one spec each, one Keras builder, one numpy forward pass.

Keras is imported inside ``build`` only, so composing (numpy forward) never loads TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelSpec:
    name: str
    batch_size: int  # the chapter's batch size
    recurrent: bool  # LSTM over the window's notes, or an MLP over them as flat features
    stateful: bool  # state carried from one window to the next within a song
    inputs: str  # "index" (one value per note) or "features" (pitch, duration)

    @property
    def features(self) -> int:
        return 2 if self.inputs == "features" else 1


SPECS = {
    s.name: s
    for s in (
        ModelSpec("mlp", batch_size=10, recurrent=False, stateful=False, inputs="index"),
        ModelSpec("lstm", batch_size=14, recurrent=True, stateful=False, inputs="index"),
        ModelSpec("stateful", batch_size=1, recurrent=True, stateful=True, inputs="index"),
        ModelSpec(
            "stateful-features", batch_size=1, recurrent=True, stateful=True, inputs="features"
        ),
    )
}
DEFAULT_UNITS = 128  # the chapter's Dense and LSTM sizes
DEFAULT_WINDOW = 4  # the chapter's window_size
UNROLL_UP_TO = 16  # unroll the LSTM over short windows: same arithmetic, fewer graph ops


@dataclass(frozen=True)
class TrainConfig:
    model: str = "stateful"  # one of SPECS
    window: int = DEFAULT_WINDOW  # notes in, the next one out (the chapter's 4)
    units: int = DEFAULT_UNITS  # Dense / LSTM width (the chapter's 128)
    epochs: int = 2000  # the chapter's 2000; --until-perfect may stop sooner
    seed: int = 5  # the chapter's np.random.seed(5): initial weights and shuffling
    until_perfect: bool = False  # stop once every window (hence the full song) is right

    @property
    def spec(self) -> ModelSpec:
        return SPECS[self.model]


def build(spec: ModelSpec, vocab_size: int, window: int, units: int):
    """The chapter's Keras model for ``spec``, uncompiled; initial weights follow Keras's seed."""
    import keras

    # Fixed layer names: Keras's automatic ones count models built earlier in the process.
    if not spec.recurrent:
        layers = [
            keras.Input(shape=(window,), name="notes"),
            keras.layers.Dense(units, activation="relu", name="hidden_1"),
            keras.layers.Dense(units, activation="relu", name="hidden_2"),
        ]
    else:
        layers = [
            keras.Input(batch_shape=(spec.batch_size, window, spec.features), name="notes")
            if spec.stateful
            else keras.Input(shape=(window, spec.features), name="notes"),
            keras.layers.LSTM(
                units, stateful=spec.stateful, unroll=window <= UNROLL_UP_TO, name="lstm"
            ),
        ]
    layers.append(keras.layers.Dense(vocab_size, activation="softmax", name="next_note"))
    return keras.Sequential(layers, name=spec.name.replace("-", "_"))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # = 1 / (1 + exp(-x)), without overflow warnings


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Forward:
    """The models' forward pass in numpy, from the Keras weights (``model.get_weights()`` order).

    ``step`` takes one window of inputs, (window, features), and returns the next-note
    probabilities; a stateful model carries (h, c) from call to call until ``reset``.
    """

    def __init__(self, spec: ModelSpec, weights: list[np.ndarray]) -> None:
        self.spec = spec
        self.weights = [np.asarray(w, dtype=np.float32) for w in weights]
        expected = 6 if not spec.recurrent else 5
        if len(self.weights) != expected:
            raise ValueError(
                f"a {spec.name} model has {expected} weight arrays, not {len(weights)}"
            )
        self.units = self.weights[1].shape[0] if spec.recurrent else self.weights[0].shape[1]
        self.reset()

    def reset(self) -> None:
        self.h = np.zeros(self.units, np.float32)
        self.c = np.zeros(self.units, np.float32)

    def step(self, window_inputs: np.ndarray) -> np.ndarray:
        x = np.asarray(window_inputs, dtype=np.float32)
        if not self.spec.recurrent:
            w1, b1, w2, b2, w3, b3 = self.weights
            hidden = np.maximum(x.reshape(-1) @ w1 + b1, 0)
            hidden = np.maximum(hidden @ w2 + b2, 0)
            return _softmax(hidden @ w3 + b3)
        kernel, recurrent, bias, dense, dense_bias = self.weights
        h, c = (
            (self.h, self.c)
            if self.spec.stateful
            else (np.zeros_like(self.h), np.zeros_like(self.c))
        )
        u = self.units
        for x_t in x.reshape(x.shape[0], -1):  # Keras's LSTM: gates i, f, c, o; sigmoid, tanh
            z = x_t @ kernel + h @ recurrent + bias
            i, f, o = _sigmoid(z[:u]), _sigmoid(z[u : 2 * u]), _sigmoid(z[3 * u :])
            c = f * c + i * np.tanh(z[2 * u : 3 * u])
            h = o * np.tanh(c)
        if self.spec.stateful:
            self.h, self.c = h, c
        return _softmax(h @ dense + dense_bias)
