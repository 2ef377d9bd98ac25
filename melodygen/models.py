"""Every model kind in one place: its sizes, weight shapes, Keras build and numpy forward pass.

Adding a kind is one ``Kind`` here (and a training loop in training.py only if it needs a new
loop shape). Keras is imported inside ``build`` only, so composing and evaluating, which run the
numpy forward pass, never load TensorFlow.

Every kind predicts through one interface, a predictor: ``reset(batch)`` gives the
log-probabilities of each song's first token, ``feed(tokens)`` those of the token after, and
``select(rows)`` keeps some songs of the batch. Generation and evaluation are written once
against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from melodygen import ngram
from melodygen.encoding import END, UNKNOWN, Vocabulary, input_table, too_short
from melodygen.notation import LENGTH_CLASSES, Song

DEFAULT_UNITS = 128  # the chapter's Dense and LSTM sizes
DEFAULT_WINDOW = 4  # the chapter's window_size
DEFAULT_ORDER = 8  # n-gram order: the best of 1-10 on a split of the Essen training songs
UNROLL_UP_TO = 16  # unroll the LSTM over short windows: same arithmetic, fewer graph ops


@dataclass(frozen=True)
class Size:
    """The sizes a model is built with; melodygen.json records them. Each kind uses some."""

    units: int = DEFAULT_UNITS  # Dense / LSTM width (the chapter's 128)
    window: int = DEFAULT_WINDOW  # notes in, the next one out (the chapter's 4)
    order: int = DEFAULT_ORDER  # n-gram: the longest n-gram counted (order - 1 tokens of context)
    layers: int = 2  # song-rnn: stacked LSTM layers
    embedding: int = 64  # song-rnn: input width, 3/4 for the pitch and 1/4 for the length


def check_shapes(kind: str, weights: list[np.ndarray], shapes, size: Size, vocab_size: int):
    found = [tuple(a.shape) for a in weights]
    if found != shapes:
        raise ValueError(
            f"weight shapes {found} do not fit a {kind} model of {size.units} units, "
            f"window {size.window} and {vocab_size} tokens (expected {shapes})"
        )
    if not all(a.dtype.kind == "f" and np.isfinite(a).all() for a in weights):
        raise ValueError("weights must be finite floating-point numbers")


def _sigmoid(x: np.ndarray) -> np.ndarray:
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
        i, f, o = _sigmoid(z[:, :u]), _sigmoid(z[:, u : 2 * u]), _sigmoid(z[:, 3 * u :])
        c = f * c + i * np.tanh(z[:, 2 * u : 3 * u])
        h = o * np.tanh(c)
    return h, c


class WindowPredictor:
    """Next-token log-probabilities for a batch of songs read in step (numpy, float64 out).

    A window model sees the song's last ``window`` tokens. Before the song has that many, it
    sees a start-of-song context: the tokens so far, and nothing for the ones before the song
    (an LSTM runs over fewer steps from a zero state; the MLP's inputs for them are 0). A
    stateful model carries its LSTM state from one full window to the next, as the chapter's
    stateful LSTM does between samples, and starts each song from a zero state.
    """

    def __init__(self, kind: Kind, size: Size, weights: list[np.ndarray], table: np.ndarray):
        self.kind, self.size, self.table = kind, size, np.asarray(table, np.float32)
        self.weights = [np.asarray(w, np.float32) for w in weights]

    def reset(self, batch: int = 1) -> np.ndarray:
        """Start ``batch`` new songs; returns the log-probabilities of their first tokens."""
        self.seen = 0  # tokens fed since the reset
        self.recent = np.zeros((batch, self.size.window, self.table.shape[1]), np.float32)
        zeros = np.zeros((batch, self.size.units), np.float32)
        self.state = (zeros, zeros)  # a stateful LSTM's (h, c) after the last full window
        return self._predict()

    def feed(self, tokens: np.ndarray) -> np.ndarray:
        """Append one token to each song (vocabulary indices, shape (batch,)); returns the
        log-probabilities of the next token, (batch, vocabulary)."""
        self.recent = np.roll(self.recent, -1, axis=1)
        self.recent[:, -1] = self.table[np.asarray(tokens)]
        self.seen += 1
        return self._predict()

    def select(self, rows: np.ndarray) -> None:
        """Keep (and reorder or repeat) these songs of the batch: for beam search."""
        self.recent = self.recent[rows]
        self.state = tuple(s[rows] for s in self.state)

    def _predict(self) -> np.ndarray:
        known = min(self.seen, self.size.window)  # tokens of this song in the window
        logits, state = self.kind.window_logits(self, self.recent[:, self.size.window - known :])
        if known == self.size.window and state is not None:
            self.state = state
        return log_softmax(logits)


class Kind:
    """A model kind: how it is built in Keras and run in numpy, and how it trains."""

    name: str
    batch_size: int = 1  # the chapter's batch size for this kind
    stateful: bool = False  # trained on windows in song order, LSTM state carried between them
    inputs: str = "index"  # how a token becomes input: "index" or "features" (encoding.py)
    specials: tuple[str, ...] = (UNKNOWN,)  # special vocabulary entries it predicts
    keras: bool = True  # trained by gradient descent in Keras (else counted: see ``fit``)
    loop: str = "windows"  # training.py's loop for it: "windows" or "songs"
    # compose's default: the chapter's models replay their song by argmax; a model of a style
    # samples (its argmax repeats a phrase for ever instead of ending the tune)
    temperature: float = 0.0
    defaults: dict = {}  # training settings of its own (training.TrainConfig's fields)  # noqa: RUF012

    @property
    def features(self) -> int:
        return 2 if self.inputs == "features" else 1

    def window(self, size: Size) -> int:
        """Tokens a song gives before the one-step predictions count (the chapter's first
        window; 0 for a model that predicts from the song's start)."""
        return size.window

    def too_short(self, song: Song, size: Size) -> str | None:
        """Why the song is too short to train on, or None."""
        return too_short(song, size.window)

    def weight_shapes(self, size: Size, vocab_size: int) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def check_weights(self, weights: list[np.ndarray], size: Size, vocab_size: int) -> None:
        """ValueError unless the weights fit this kind at this size (a model directory is
        untrusted input)."""
        check_shapes(self.name, weights, self.weight_shapes(size, vocab_size), size, vocab_size)

    def build(self, size: Size, vocab_size: int, batch: int | None = None):
        """The Keras model, uncompiled; initial weights follow Keras's random seed. ``batch``
        fixes a stateful model's batch size (default: the chapter's)."""
        raise NotImplementedError

    def window_logits(
        self, p: WindowPredictor, x: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Logits for the next token after the window ``x`` (batch, known tokens, features),
        and the LSTM state to carry when the window is full (None: nothing carried)."""
        raise NotImplementedError

    def predictor(self, size: Size, weights: list[np.ndarray], vocab: Vocabulary):
        return WindowPredictor(self, size, weights, input_table(vocab, self.inputs))


class MLP(Kind):
    """The chapter's multilayer perceptron: the window's inputs flattened, two relu layers."""

    name, batch_size = "mlp", 10

    def weight_shapes(self, size, vocab_size):
        u, w = size.units, size.window * self.features
        return [(w, u), (u,), (u, u), (u,), (u, vocab_size), (vocab_size,)]

    def build(self, size, vocab_size, batch=None):
        import keras

        # Fixed layer names: Keras's automatic ones count models built earlier in the process.
        return keras.Sequential(
            [
                keras.Input(shape=(size.window, self.features), name="notes"),
                keras.layers.Flatten(name="flat"),  # the chapter's 4 features: a reshape only
                keras.layers.Dense(size.units, activation="relu", name="hidden_1"),
                keras.layers.Dense(size.units, activation="relu", name="hidden_2"),
                keras.layers.Dense(vocab_size, activation="softmax", name="next_note"),
            ],
            name=self.name,
        )

    def window_logits(self, p, x):
        w1, b1, w2, b2, w3, b3 = p.weights
        full = np.zeros((len(x), p.size.window, x.shape[2]), np.float32)
        full[:, p.size.window - x.shape[1] :] = x  # tokens before the song's start are 0
        hidden = np.maximum(full.reshape(len(x), -1) @ w1 + b1, 0)
        hidden = np.maximum(hidden @ w2 + b2, 0)
        return hidden @ w3 + b3, None


@dataclass(frozen=True)
class WindowLSTM(Kind):
    """The chapter's LSTM over the window's notes, then a softmax; stateful or not."""

    name: str
    batch_size: int
    stateful: bool
    inputs: str

    def weight_shapes(self, size, vocab_size):
        u, f = size.units, self.features
        return [(f, 4 * u), (u, 4 * u), (4 * u,), (u, vocab_size), (vocab_size,)]

    def build(self, size, vocab_size, batch=None):
        import keras

        shape = dict(batch_shape=(batch or self.batch_size, size.window, self.features))
        if not self.stateful:
            shape = dict(shape=(size.window, self.features))
        return keras.Sequential(
            [
                keras.Input(**shape, name="notes"),
                keras.layers.LSTM(
                    size.units,
                    stateful=self.stateful,
                    unroll=size.window <= UNROLL_UP_TO,
                    name="lstm",
                ),
                keras.layers.Dense(vocab_size, activation="softmax", name="next_note"),
            ],
            name=self.name.replace("-", "_"),
        )

    def window_logits(self, p, x):
        kernel, recurrent, bias, dense, dense_bias = p.weights
        full = x.shape[1] == p.size.window
        h0, c0 = p.state if self.stateful and full else (np.zeros_like(s) for s in p.state)
        h, c = lstm_steps(x, h0, c0, kernel, recurrent, bias)
        return h @ dense + dense_bias, (h, c) if self.stateful else None


class NGramPredictor:
    """The n-gram's next-token log-probabilities for a batch of songs read in step."""

    def __init__(self, tables: ngram.Tables) -> None:
        self.tables = tables

    def reset(self, batch: int = 1) -> np.ndarray:
        self.state = self.tables.start(batch)
        return self._predict()

    def feed(self, tokens: np.ndarray) -> np.ndarray:
        self.state = self.tables.advance(self.state, tokens)
        return self._predict()

    def select(self, rows: np.ndarray) -> None:
        self.state = self.state[rows]

    def _predict(self) -> np.ndarray:
        return np.log(self.tables.distributions(self.state))


class NGram(Kind):
    """A variable-order Markov model over tokens, interpolated modified Kneser-Ney (ngram.py):
    the floor every neural model is judged against. Counted in seconds, no TensorFlow."""

    name, keras, temperature = "ngram", False, 1.0
    specials = (END, UNKNOWN)

    def window(self, size):
        return 0

    def too_short(self, song, size):
        return None

    def weight_shapes(self, size, vocab_size):
        raise NotImplementedError("an n-gram model's tables have the sizes its songs give")

    def check_weights(self, weights, size, vocab_size):
        if ngram.check(weights, vocab_size) != size.order:
            raise ValueError(f"the tables do not hold an order-{size.order} model")

    def fit(self, songs: list[list[int]], vocab: Vocabulary, size: Size) -> list[np.ndarray]:
        return ngram.count(songs, len(vocab), vocab.end, size.order)

    def predictor(self, size, weights, vocab):
        return NGramPredictor(ngram.Tables(weights, len(vocab)))


# What a song-rnn reads about a token: a pitch id (a MIDI pitch, or one of the ids below) and a
# length id: the 18 plain lengths of notation.LENGTH_CLASSES, then <start>, <unk> and none,
# then the triplet and tied lengths. Models trained before ties and triplets existed have only
# the first 21 rows, and still load: their vocabularies have no other lengths.
REST_ID, START_ID, UNKNOWN_ID, NONE_ID = 128, 129, 130, 131  # NONE: no earlier match
PITCH_IDS = 132
PLAIN_LENGTHS = 18
START_LENGTH, UNKNOWN_LENGTH, NONE_LENGTH = PLAIN_LENGTHS, PLAIN_LENGTHS + 1, PLAIN_LENGTHS + 2
LENGTH_IDS = len(LENGTH_CLASSES) + 3
PLAIN_LENGTH_IDS = PLAIN_LENGTHS + 3
REPEAT_CAP = 16  # a repeat's length is counted up to this many tokens
REPEAT_WIDTH = 8  # the width of a repeat length's embedding


def factored_inputs(vocab: Vocabulary) -> np.ndarray:
    """(pitch id, length id) of each vocabulary entry, then of <start> and of "no token" in the
    last two rows: int (vocabulary + 2, 2). A token's pitch and length are learned separately,
    so a rare (pitch, length) pair shares what the common ones teach."""
    ids = np.zeros((len(vocab) + 2, 2), np.int64)
    for i, note in enumerate(vocab.notes):
        length = note.length_class
        ids[i] = (
            (REST_ID if note.is_rest else note.midi_pitch),
            length + 3 * (length >= PLAIN_LENGTHS),
        )
    ids[len(vocab)] = START_ID, START_LENGTH
    if vocab.unknown is not None:
        ids[vocab.unknown] = UNKNOWN_ID, UNKNOWN_LENGTH
    ids[len(vocab) + 1] = NONE_ID, NONE_LENGTH
    return ids


class Repeats:
    """Where a batch of songs, read in step, last repeated itself: the song's own short-term
    memory, which a folk tune's repeated phrases make the best single clue to its next token.

    After tokens a[0..t-1], S(j) is the length of the longest common suffix of a[:j] and a[:t]
    for each earlier j (0 < j < t), capped at REPEAT_CAP; the repeat is the longest one (the
    latest j among equals): the token a[j] that followed it then, and its length (0: none).
    S is updated in place: S'(j) = S(j - 1) + 1 if a[j - 1] is the new token, else 0.
    """

    def __init__(self, batch: int) -> None:
        self.tokens = np.zeros((batch, 0), np.int64)
        self.suffix = np.zeros((batch, 1), np.int64)  # S(j) for j = 0..t-1; S(0) = 0

    def push(self, tokens: np.ndarray) -> None:
        same = self.tokens == np.asarray(tokens)[:, None]  # a[j - 1] == token, j = 1..t
        grown = np.where(same, np.minimum(self.suffix + 1, REPEAT_CAP), 0)
        self.suffix = np.concatenate([np.zeros((len(grown), 1), np.int64), grown], 1)
        self.tokens = np.concatenate([self.tokens, np.asarray(tokens)[:, None]], 1)

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """(where the token that followed the repeat stands in the song, -1 for none; the
        repeat's length, 0 for none), each (batch,)."""
        t = self.tokens.shape[1]
        if t < 2:
            return np.full(len(self.tokens), -1), np.zeros(len(self.tokens), np.int64)
        candidates = self.suffix[:, 1:t]  # j = 1..t-1
        latest = t - 2 - np.argmax(candidates[:, ::-1], axis=1)  # the last j with the maximum
        length = candidates[np.arange(len(candidates)), latest]
        return np.where(length > 0, latest + 1, -1), length

    def following(self) -> tuple[np.ndarray, np.ndarray]:
        """(the token that followed the repeat, -1 for none; the repeat's length)."""
        at, length = self.current()
        if not self.tokens.shape[1]:
            return at, length
        follow = self.tokens[np.arange(len(at)), np.maximum(at, 0)]
        return np.where(at >= 0, follow, -1), length

    def select(self, rows: np.ndarray) -> None:
        self.tokens, self.suffix = self.tokens[rows], self.suffix[rows]


def song_inputs(
    table: np.ndarray, previous: np.ndarray, follow: np.ndarray, length: np.ndarray
) -> np.ndarray:
    """Input ids, (..., 5): the previous token's pitch and length, those of the token that
    followed the song's latest repeat (-1: none), and the repeat's length (Repeats).
    ``table``: factored_inputs."""
    return np.concatenate([table[previous], table[follow], length[..., None]], -1)


def _embedding_widths(size: Size) -> tuple[int, int]:
    pitch = max(1, size.embedding * 3 // 4)
    return pitch, max(1, size.embedding - pitch)


class SongPredictor:
    """A song-rnn read one token at a time: <start> first, then each token fed back."""

    def __init__(self, size: Size, weights: list[np.ndarray], vocab: Vocabulary) -> None:
        self.size, self.table, self.start = size, factored_inputs(vocab), len(vocab)
        w = [np.asarray(a, np.float32) for a in weights]
        self.pitch_embedding, self.length_embedding, self.repeat_embedding = w[:3]
        self.layers = [w[3 + 3 * i : 6 + 3 * i] for i in range(size.layers)]
        self.dense, self.dense_bias = w[-2], w[-1]

    def reset(self, batch: int = 1) -> np.ndarray:
        zeros = np.zeros((batch, self.size.units), np.float32)
        self.state = [(zeros, zeros) for _ in self.layers]
        self.repeats = Repeats(batch)
        return self._step(np.full(batch, self.start))  # <start>

    def feed(self, tokens: np.ndarray) -> np.ndarray:
        self.repeats.push(tokens)
        return self._step(np.asarray(tokens))

    def _step(self, previous: np.ndarray) -> np.ndarray:
        ids = song_inputs(self.table, previous, *self.repeats.following())
        x = np.concatenate(
            [
                self.pitch_embedding[ids[:, 0]],
                self.length_embedding[ids[:, 1]],
                self.pitch_embedding[ids[:, 2]],
                self.length_embedding[ids[:, 3]],
                self.repeat_embedding[ids[:, 4]],
            ],
            1,
        )
        for i, (kernel, recurrent, bias) in enumerate(self.layers):
            self.state[i] = lstm_steps(x[:, None], *self.state[i], kernel, recurrent, bias)
            x = self.state[i][0]
        return log_softmax(x @ self.dense + self.dense_bias)

    def select(self, rows: np.ndarray) -> None:
        self.state = [(h[rows], c[rows]) for h, c in self.state]
        self.repeats.select(rows)


class SongRNN(Kind):
    """A whole-song RNN (the field's melody model: Magenta's Melody RNN, folk-rnn): from a
    <start> token, each token in as learned pitch and length embeddings, stacked LSTMs with
    dropout, a softmax over the vocabulary; it predicts every next token and the song's end.
    Beside each token it reads where the song last repeated itself (Repeats), as Magenta's
    Lookback RNN reads the bars before: folk tunes repeat their phrases."""

    name, loop, inputs, temperature = "song-rnn", "songs", "factored", 1.0
    specials = (END, UNKNOWN)
    # Trained until the held-out loss stops improving, not for the chapter's 2000 epochs.
    # min_delta: gains under 0.1% of the loss are noise, not a reason to train a minute more
    defaults = {"units": 256, "epochs": 100, "patience": 3, "min_delta": 0.002,  # noqa: RUF012
                "transpose": (-5, 6)}  # fmt: skip

    def window(self, size):
        return 0

    def too_short(self, song, size):
        return None

    def weight_shapes(self, size, vocab_size, length_ids: int = LENGTH_IDS):
        pitch, length = _embedding_widths(size)
        shapes: list[tuple[int, ...]] = [
            (PITCH_IDS, pitch),
            (length_ids, length),
            (REPEAT_CAP + 1, REPEAT_WIDTH),
        ]
        width, u = 2 * (pitch + length) + REPEAT_WIDTH, size.units
        for _ in range(size.layers):
            shapes += [(width, 4 * u), (u, 4 * u), (4 * u,)]
            width = u
        return [*shapes, (u, vocab_size), (vocab_size,)]

    def check_weights(self, weights, size, vocab_size):
        """A model trained before ties and triplets has PLAIN_LENGTH_IDS rows of lengths; its
        vocabulary has no other lengths, so it fits as well."""
        old = len(weights) > 1 and weights[1].shape[0] == PLAIN_LENGTH_IDS
        shapes = self.weight_shapes(size, vocab_size, PLAIN_LENGTH_IDS if old else LENGTH_IDS)
        check_shapes(self.name, weights, shapes, size, vocab_size)

    def build(self, size, vocab_size, batch=None, dropout: float = 0.0):
        """(input ids (batch, steps, 5) as song_inputs gives them, then (h, c) of each layer)
        in, (logits, then each layer's final (h, c)) out, so that training can carry the state
        from one chunk of a batch of songs to the next."""
        import keras

        pitch_width, length_width = _embedding_widths(size)
        ids = keras.Input(shape=(None, 5), dtype="int32", name="ids")
        states = [keras.Input(shape=(size.units,), name=f"{s}_{i + 1}")
                  for i in range(size.layers) for s in ("h", "c")]  # fmt: skip
        pitch = keras.layers.Embedding(PITCH_IDS, pitch_width, name="pitch_embedding")
        length = keras.layers.Embedding(LENGTH_IDS, length_width, name="length_embedding")
        repeat = keras.layers.Embedding(REPEAT_CAP + 1, REPEAT_WIDTH, name="repeat_embedding")
        x = keras.layers.Concatenate(name="inputs")([
            pitch(ids[..., 0]), length(ids[..., 1]), pitch(ids[..., 2]), length(ids[..., 3]),
            repeat(ids[..., 4]),
        ])  # fmt: skip
        x = keras.layers.Dropout(dropout, name="dropout_0")(x)
        finals = []
        for i in range(size.layers):
            lstm = keras.layers.LSTM(
                size.units, return_sequences=True, return_state=True, name=f"lstm_{i + 1}"
            )
            x, h, c = lstm(x, initial_state=states[2 * i : 2 * i + 2])
            x = keras.layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
            finals += [h, c]
        logits = keras.layers.Dense(vocab_size, name="next_token")(x)
        return keras.Model([ids, *states], [logits, *finals], name="song_rnn")

    def predictor(self, size, weights, vocab):
        return SongPredictor(size, weights, vocab)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        MLP(),
        WindowLSTM("lstm", batch_size=14, stateful=False, inputs="index"),
        WindowLSTM("stateful", batch_size=1, stateful=True, inputs="index"),
        WindowLSTM("stateful-features", batch_size=1, stateful=True, inputs="features"),
        NGram(),
        SongRNN(),
    )
}
CHAPTER_KINDS = ("mlp", "lstm", "stateful", "stateful-features")


@dataclass(frozen=True)
class Model:
    """A trained model as numpy arrays: everything composing and evaluating need."""

    kind: Kind
    size: Size
    vocab: Vocabulary
    weights: tuple[np.ndarray, ...]

    def predictor(self):
        return self.kind.predictor(self.size, list(self.weights), self.vocab)

    @property
    def window(self) -> int:
        """Tokens of a song given before the model's one-step predictions count."""
        return self.kind.window(self.size)
