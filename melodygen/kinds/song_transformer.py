"""The ``song-transformer`` kind: a decoder-only Transformer over whole songs (Music Transformer,
Huang et al. 2018), reading each token as a song-rnn does (its pitch and length embeddings,
where the song last repeated itself, its meter and place in the bar, its key) and trained as a
song-rnn is (song_rnn.SongTrainer: batches of whole songs, each in a random key per epoch,
under a tf.distribute strategy, until the held-out loss stops improving).

Each block is pre-norm (layer normalization before causal self-attention and before a ReLU
feed-forward layer, each added back: GPT-2's arrangement, which trains stably at a
Transformer's learning rates). Positions are relative, as Music Transformer's are, but by
rotary embeddings (Su et al. 2021): each head's queries and keys are turned by an angle
proportional to their position, so that their product depends on the distance alone; that
needs no skewed relative-logit tensor, and a key once computed never changes, so composing
and evaluating keep a key/value cache and pay one position per token (TransformerPredictor,
numpy only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from melodygen.kinds import base, song_rnn
from melodygen.kinds.base import SettingError, check_shapes, setting
from melodygen.kinds.layers import log_softmax, matmul
from melodygen.kinds.song_rnn import LENGTH_IDS, SongPredictor, SongRNN, SongSpec

NORM_EPSILON = 1e-5
ROTARY_BASE = 10000.0  # the slowest angle turns once in 2 pi x this many positions
FEED_FORWARD = 4  # the feed-forward layer's width, in model widths
BLOCK_ARRAYS = 12  # weight arrays per block: 2 norms, attention's 4, feed-forward's 4


@dataclass(frozen=True)
class TransformerSpec(SongSpec):
    """A song-rnn's settings, with a Transformer's sizes: the whole song in one chunk (a
    Transformer carries no state from one chunk to the next), Adam at a Transformer's rate,
    warmed up and decayed by a cosine."""

    units: int = setting(192, "model width", 1, 4096, panel="model")
    layers: int = setting(4, "Transformer blocks", 1, 8, panel="model")
    learning_rate: float = base.learning_rate(0.002)
    dropout: float = setting(0.1, "dropout on the inputs and on each block's two outputs", 0, 0.9)
    chunk: int = setting(
        4096,
        "the most tokens of a song read at once (a longer one in parts that do not see each other)",
        1,
        4096,
    )
    epochs: int = base.epochs(4)
    schedule: str = song_rnn.schedule("cosine")
    warmup: int = song_rnn.warmup(100)
    heads: int = setting(4, "attention heads (each of units / heads, an even width)", 1, 256,
                         panel="model")  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.units % self.heads or (self.units // self.heads) % 2:
            raise SettingError("heads", f"must split units ({self.units}) into even widths")


def frequencies(width: int) -> np.ndarray:
    """A head's angles per position, (width / 2,): 1 / ROTARY_BASE ** (2j / width)."""
    return (1.0 / ROTARY_BASE ** (np.arange(0, width, 2) / width)).astype(np.float32)


def rotary(positions: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of each position's angles, (positions, width / 2), in float32 as Keras
    computes them."""
    angles = positions.astype(np.float32)[:, None] * frequencies(width)[None]
    return np.cos(angles), np.sin(angles)


def rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Each head's (first half, second half) pairs turned: x (..., positions, heads, width)."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    cos, sin = cos[:, None], sin[:, None]
    return np.concatenate([a * cos - b * sin, a * sin + b * cos], -1)


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + NORM_EPSILON) * gamma + beta


@functools.cache
def keras_block():
    """The Keras layer of one block (imported with Keras, when training starts)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="melodygen")
    class TransformerBlock(keras.layers.Layer):
        """Pre-norm causal self-attention with rotary positions, then a feed-forward layer."""

        def __init__(self, units: int, heads: int, dropout: float = 0.0, **kwargs) -> None:
            super().__init__(**kwargs)
            self.units, self.heads, self.dropout = units, heads, dropout
            self.drop = keras.layers.Dropout(dropout)

        def build(self, shape) -> None:
            u, wide = self.units, FEED_FORWARD * self.units

            def add(name, size, initializer="glorot_uniform"):
                return self.add_weight(name=name, shape=size, initializer=initializer)

            self.norm_1 = [add("norm_1_gamma", (u,), "ones"), add("norm_1_beta", (u,), "zeros")]
            self.attend = [
                add("qkv_kernel", (u, 3 * u)),
                add("qkv_bias", (3 * u,), "zeros"),
                add("out_kernel", (u, u)),
                add("out_bias", (u,), "zeros"),
            ]
            self.norm_2 = [add("norm_2_gamma", (u,), "ones"), add("norm_2_beta", (u,), "zeros")]
            self.feed = [
                add("wide_kernel", (u, wide)),
                add("wide_bias", (wide,), "zeros"),
                add("narrow_kernel", (wide, u)),
                add("narrow_bias", (u,), "zeros"),
            ]

        def _norm(self, x, gamma, beta):
            mean = ops.mean(x, -1, keepdims=True)
            variance = ops.mean(ops.square(x - mean), -1, keepdims=True)
            return (x - mean) / ops.sqrt(variance + NORM_EPSILON) * gamma + beta

        def call(self, x, training=None):
            batch, steps = ops.shape(x)[0], ops.shape(x)[1]
            width = self.units // self.heads
            qkv = ops.matmul(self._norm(x, *self.norm_1), self.attend[0]) + self.attend[1]
            qkv = ops.reshape(qkv, (batch, steps, 3, self.heads, width))
            positions = ops.cast(ops.arange(steps), "float32")
            angles = positions[:, None] * frequencies(width)[None]
            cos, sin = ops.cos(angles)[:, None], ops.sin(angles)[:, None]

            def turn(v):
                a, b = v[..., : width // 2], v[..., width // 2 :]
                return ops.concatenate([a * cos - b * sin, a * sin + b * cos], -1)

            q, k, v = turn(qkv[:, :, 0]), turn(qkv[:, :, 1]), qkv[:, :, 2]
            y = ops.dot_product_attention(q, k, v, is_causal=True)
            y = ops.matmul(ops.reshape(y, (batch, steps, self.units)), self.attend[2])
            x = x + self.drop(y + self.attend[3], training=training)
            y = ops.relu(ops.matmul(self._norm(x, *self.norm_2), self.feed[0]) + self.feed[1])
            return x + self.drop(ops.matmul(y, self.feed[2]) + self.feed[3], training=training)

        def get_config(self):
            return {**super().get_config(), "units": self.units, "heads": self.heads,
                    "dropout": self.dropout}  # fmt: skip

    return TransformerBlock


class TransformerPredictor(SongPredictor):
    """A song-transformer read one token at a time, each block keeping the keys and values of
    the positions before (grown in place, doubling)."""

    def _body(self, w):
        """The input projection, then each block's BLOCK_ARRAYS, then the final norm."""
        self.projection, self.final_norm = w[:2], w[-2:]
        blocks = w[2:-2]
        return [blocks[i : i + BLOCK_ARRAYS] for i in range(0, len(blocks), BLOCK_ARRAYS)]

    def reset(self, batch=1, starts=None):
        u = self.spec.units
        self.cache = [np.zeros((2, batch, 16, u), np.float32) for _ in self.layers]
        self.filled = 0
        return super().reset(batch, starts)

    def _step(self, previous: np.ndarray) -> np.ndarray:
        spec, t = self.spec, self.filled
        heads, width = spec.heads, spec.units // spec.heads
        x = matmul(self._inputs(previous), self.projection[0]) + self.projection[1]
        cos, sin = rotary(np.array([t]), width)
        for i, w in enumerate(self.layers):
            if t == self.cache[i].shape[2]:  # full: twice the room
                self.cache[i] = np.concatenate([self.cache[i], np.zeros_like(self.cache[i])], 2)
            qkv = (matmul(layer_norm(x, *w[:2]), w[2]) + w[3]).reshape(len(x), 3, heads, width)
            q = rotate(qkv[:, 0][:, None], cos, sin)[:, 0]  # (batch, heads, width)
            self.cache[i][0, :, t] = rotate(qkv[:, 1][:, None], cos, sin)[:, 0].reshape(len(x), -1)
            self.cache[i][1, :, t] = qkv[:, 2].reshape(len(x), -1)
            keys, values = (a[:, : t + 1].reshape(len(x), t + 1, heads, width)
                            for a in self.cache[i])  # fmt: skip
            scores = np.einsum("bhw,bthw->bht", q, keys) / np.sqrt(width)
            p = np.exp(scores - scores.max(-1, keepdims=True))
            y = np.einsum("bht,bthw->bhw", p / p.sum(-1, keepdims=True), values)
            x = x + matmul(y.reshape(len(x), -1), w[4]) + w[5]
            wide = np.maximum(matmul(layer_norm(x, *w[6:8]), w[8]) + w[9], 0)
            x = x + matmul(wide, w[10]) + w[11]
        self.filled = t + 1
        self.hidden = layer_norm(x, *self.final_norm)  # what within-tune learning adapts to
        return log_softmax(self.hidden, self.dense, self.dense_bias)  # matmul: in row blocks

    def select(self, rows):
        super().select(rows)
        self.cache = [c[:, rows] for c in self.cache]


class SongTransformer(SongRNN):
    """A song-rnn whose LSTMs are Transformer blocks (the module docstring)."""

    name, spec = "song-transformer", TransformerSpec()

    def state_names(self, spec):
        return []  # it reads each chunk whole, carrying nothing to the next

    def weight_shapes(self, spec, vocab_size, length_ids=LENGTH_IDS):
        shapes, width = self.input_shapes(spec, length_ids)
        u, wide = spec.units, FEED_FORWARD * spec.units
        shapes += [(width, u), (u,)]
        block = [(u,), (u,), (u, 3 * u), (3 * u,), (u, u), (u,), (u,), (u,), (u, wide), (wide,),
                 (wide, u), (u,)]  # fmt: skip
        return [*shapes, *block * spec.layers, (u,), (u,), (u, vocab_size), (vocab_size,)]

    def check_weights(self, weights, spec, vocab_size):
        check_shapes(self, weights, self.weight_shapes(spec, vocab_size))

    def build(self, spec, vocab_size, dropout=0.0):
        """Input ids (batch, steps, columns) in, logits out; a Keras list of one each, as the
        song-rnn's trainer calls it."""
        import keras

        ids = keras.Input(shape=(None, self.columns(spec)), dtype="int32", name="ids")
        x = self.embedded(keras, spec, ids)  # before the dropout's seed: the weights' draws
        x = keras.layers.Dropout(dropout, name="dropout_0")(x)
        x = keras.layers.Dense(spec.units, name="projection")(x)
        block = keras_block()
        for i in range(spec.layers):
            x = block(spec.units, spec.heads, dropout, name=f"block_{i + 1}")(x)
        x = keras.layers.LayerNormalization(epsilon=NORM_EPSILON, name="final_norm")(x)
        logits = keras.layers.Dense(vocab_size, name="next_token")(x)
        return keras.Model([ids], [logits], name=self.name.replace("-", "_"))

    def predictor(self, spec, weights, vocab):
        return TransformerPredictor(self, spec, weights, vocab)

    def describe(self, spec, vocab):
        return super().describe(spec, vocab) + "; positions relative, by rotary embeddings"

    def multiply_adds(self, spec, vocab_size: int, mean_length: float) -> float:
        """A token's forward pass, attending to mean_length / 2 positions on average."""
        _, width = self.input_shapes(spec)
        u = spec.units
        block = 3 * u * u + u * u + 2 * FEED_FORWARD * u * u + 2 * u * mean_length / 2
        return width * u + spec.layers * block + u * vocab_size


SONG_TRANSFORMER = SongTransformer()
