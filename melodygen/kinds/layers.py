"""The Keras layers the kinds use, as numpy forward passes: what composing and evaluating run
instead of TensorFlow. Tests check each kind's against Keras on whole songs."""

from __future__ import annotations

import numpy as np

# Rows per matrix product (matmul): a BLAS gives a row the same bits whatever the other rows
# hold, but not whatever their number (one row takes another code path), so products of a
# fixed number of rows keep each row's arithmetic independent of how many are read in step.
ROWS = 32


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # = 1 / (1 + exp(-x)), without overflow warnings


def log_softmax(x: np.ndarray, kernel: np.ndarray | None = None, bias=0.0) -> np.ndarray:
    """Log-probabilities from logits ``x``, or with a ``kernel`` from a dense layer's input:
    the logits matmul(x, kernel) + bias. In float64, so that no probability underflows to 0
    and every measure stays finite."""
    logits = x if kernel is None else matmul(x, kernel) + bias
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w for x (rows, k): more than ROWS rows are multiplied ROWS at a time (the last
    block overlapping the one before), so that every row of a batch of ROWS or more gets the
    bits a product of ROWS rows gives it, whatever the batch's size (composing pads a batch
    to ROWS rows: generation.sample). Fewer rows are one product, as before."""
    n = len(x)
    if n <= ROWS:
        return x @ w
    out = np.empty((n, w.shape[-1]), np.result_type(x, w))
    for first in range(0, n, ROWS):
        first = min(first, n - ROWS)
        out[first : first + ROWS] = x[first : first + ROWS] @ w
    return out


def lstm_steps(
    x: np.ndarray, h: np.ndarray, c: np.ndarray, kernel, recurrent, bias
) -> tuple[np.ndarray, np.ndarray]:
    """Keras's LSTM over x (batch, steps, features) from (h, c), each (batch, units): gates
    i, f, c, o; sigmoid and tanh. Returns the final (h, c)."""
    u = h.shape[-1]
    for t in range(x.shape[1]):
        z = matmul(x[:, t], kernel) + matmul(h, recurrent) + bias
        i, f, o = sigmoid(z[:, :u]), sigmoid(z[:, u : 2 * u]), sigmoid(z[:, 3 * u :])
        c = f * c + i * np.tanh(z[:, 2 * u : 3 * u])
        h = o * np.tanh(c)
    return h, c
