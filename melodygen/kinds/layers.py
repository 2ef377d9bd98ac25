"""The Keras layers the kinds use, as numpy forward passes: what composing and evaluating run
instead of TensorFlow. Tests check each kind's against Keras on whole songs."""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # = 1 / (1 + exp(-x)), without overflow warnings


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """In float64, so that no probability underflows to 0 and every measure stays finite."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def lstm_steps(
    x: np.ndarray, h: np.ndarray, c: np.ndarray, kernel, recurrent, bias
) -> tuple[np.ndarray, np.ndarray]:
    """Keras's LSTM over x (batch, steps, features) from (h, c), each (batch, units): gates
    i, f, c, o; sigmoid and tanh. Returns the final (h, c)."""
    u = h.shape[-1]
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, o = sigmoid(z[:, :u]), sigmoid(z[:, u : 2 * u]), sigmoid(z[:, 3 * u :])
        c = f * c + i * np.tanh(z[:, 2 * u : 3 * u])
        h = o * np.tanh(c)
    return h, c
