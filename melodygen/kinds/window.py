"""The chapter's four models, which differ only in their spec: a multilayer perceptron, an
LSTM, a stateful LSTM, and a stateful LSTM fed (pitch, duration) features. Each reads a window
of the song's last notes and predicts the next one.

Inputs, as the chapter encodes a token:

- ``index`` (mlp, lstm, stateful): the token's vocabulary index / (song tokens - 1), as the
  chapter divides by 13; ``<unk>`` is the value after the last token.
- ``features`` (stateful-features): (pitch, duration) equal to the chapter's ``code2features``
  on its tokens: pitch = diatonic steps above middle C / 6 (c..b = 0..1; an octave adds 7/6; a
  sharp adds half a step, 1/12, a flat takes it away); duration = -log2(beats) (quarter 0,
  eighth 1, half -1, sixteenth 2, a dot makes it smaller). A rest has the duration of its
  length and pitch REST_STEPS / 6, ``<unk>`` pitch UNKNOWN_STEPS / 6: values off the half-step
  grid, so that no note has the same features.
- Labels: one-hot over the vocabulary.

Training has the chapter's arithmetic without its per-call overhead. The chapter calls ``fit``
once per epoch and Keras then pays Python overhead on every batch: for a stateful model that is
100,000 batch-1 steps over 2000 epochs. Here one train step (forward, gradient, Adam update) is
an XLA-compiled function, and a TensorFlow graph loop drives it over many epochs per call,
resetting the LSTM state where the chapter does: at each epoch, at each song's first window, and
before evaluating. Windows, their order, batch sizes and Adam updates are the chapter's: tests
check the weights against the chapter's own loop (chapter.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from melodygen.encoding import Vocabulary
from melodygen.kinds import base
from melodygen.kinds.base import Kind, Model, Spec, check_shapes, setting
from melodygen.kinds.layers import log_softmax, lstm_steps, matmul
from melodygen.notation import MIDDLE_C_OCTAVE, Note, Song
from melodygen.theory import LETTERS
from melodygen.training import EpochLoop, Run, Trained, setup_tensorflow

MAX_SCALE_VALUE = 6.0  # the chapter's max_scale_value: b is 6 steps above c
REST_STEPS = -1.25  # a rest's pitch, in diatonic steps: between B3 (-1) and B-3 (-1.5)
UNKNOWN_STEPS = -1.75  # <unk>'s: between B-3 (-1.5) and A3 (-2)
UNROLL_UP_TO = 16  # unroll the LSTM over short windows: same arithmetic, fewer graph ops


@dataclass(frozen=True)
class WindowSpec(Spec):
    """The chapter's settings; each kind's defaults are the chapter's for it."""

    units: int = setting(128, "Dense or LSTM width", 1, 4096, panel="model")
    window: int = setting(4, "notes in, the next one out", 1, 256, panel="model")
    epochs: int = base.epochs(2000)
    batch: int = setting(1, "windows per step, or songs side by side for a stateful kind", 1, 4096)
    learning_rate: float = base.learning_rate(0.001)  # Keras's default: the chapter's "adam"
    patience: int | None = base.patience(None)
    min_delta: float = base.min_delta(0.0)
    until_perfect: bool = setting(False, "stop once every window and the full song are right")


def note_to_features(note: Note) -> tuple[float, float]:
    """(pitch, duration) as the chapter's code2features, extended (see the module docstring)."""
    duration = math.log2(1 / note.beats)
    if note.is_rest:
        return REST_STEPS / MAX_SCALE_VALUE, duration
    steps = LETTERS.index(note.letter) + 7 * (note.octave - MIDDLE_C_OCTAVE) + note.alter / 2
    return steps / MAX_SCALE_VALUE, duration


def input_table(vocab: Vocabulary, inputs: str) -> np.ndarray:
    """Model input for each vocabulary index: (vocabulary size, features) float32, ``inputs``
    "index" or "features". <end> is never an input; its row is zeros."""
    n = vocab.song_tokens
    if inputs == "index":
        scale = max(n - 1, 1)  # the chapter's max_idx_value = 13
        table = np.zeros((len(vocab), 1))
        table[:n, 0] = np.arange(n) / scale
        if vocab.unknown is not None:
            table[vocab.unknown, 0] = n / scale
        return table.astype(np.float32)
    table = np.zeros((len(vocab), 2))
    table[:n] = [note_to_features(note) for note in vocab.notes]
    if vocab.unknown is not None:
        table[vocab.unknown] = (UNKNOWN_STEPS / MAX_SCALE_VALUE, 0.0)
    return table.astype(np.float32)


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


class WindowPredictor:
    """Next-token log-probabilities for a batch of songs read in step (numpy, float64 out).

    A window model sees the song's last ``window`` tokens. Before the song has that many, it
    sees a start-of-song context: the tokens so far, and nothing for the ones before the song
    (an LSTM runs over fewer steps from a zero state; the MLP's inputs for them are 0). A
    stateful model carries its LSTM state from one full window to the next, as the chapter's
    stateful LSTM does between samples, and starts each song from a zero state.
    """

    def __init__(self, kind: WindowKind, spec: WindowSpec, weights, table: np.ndarray) -> None:
        self.kind, self.spec, self.table = kind, spec, np.asarray(table, np.float32)
        self.weights = [np.asarray(w, np.float32) for w in weights]

    def reset(self, batch: int = 1, starts=None) -> np.ndarray:
        """Start ``batch`` new songs (their meters do not matter to it); returns the
        log-probabilities of their first tokens."""
        self.seen = 0  # tokens fed since the reset
        self.recent = np.zeros((batch, self.spec.window, self.table.shape[1]), np.float32)
        zeros = np.zeros((batch, self.spec.units), np.float32)
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
        known = min(self.seen, self.spec.window)  # tokens of this song in the window
        logits, state = self.kind.window_logits(self, self.recent[:, self.spec.window - known :])
        if known == self.spec.window and state is not None:
            self.state = state
        return log_softmax(logits)


class WindowKind(Kind):
    """What the chapter's four share: windows in, the next token out, trained on windows."""

    stateful: bool = False  # trained on windows in song order, LSTM state carried between them
    inputs: str = "index"  # how a token becomes input: "index" or "features"

    @property
    def features(self) -> int:
        return 2 if self.inputs == "features" else 1

    def given(self, spec):
        return spec.window

    def too_short(self, song, spec):
        if len(song.notes) <= spec.window:
            return (
                f"{len(song.notes)} notes is too short to train on: a window of {spec.window} "
                f"needs at least {spec.window + 1}"
            )
        return None

    def weight_shapes(self, spec: WindowSpec, vocab_size: int) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def check_weights(self, weights, spec, vocab_size):
        check_shapes(self, weights, self.weight_shapes(spec, vocab_size))

    def build(self, spec: WindowSpec, vocab_size: int):
        """The Keras model, uncompiled; initial weights follow Keras's random seed (a stateful
        model's batch size is the spec's)."""
        raise NotImplementedError

    def window_logits(
        self, p: WindowPredictor, x: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Logits for the next token after the window ``x`` (batch, known tokens, features),
        and the LSTM state to carry when the window is full (None: nothing carried)."""
        raise NotImplementedError

    def predictor(self, spec, weights, vocab):
        return WindowPredictor(self, spec, weights, input_table(vocab, self.inputs))

    def describe(self, spec, vocab):
        if self.inputs == "index":
            return f"vocabulary index / {max(vocab.song_tokens - 1, 1)}"
        return (
            "(pitch, duration): pitch = diatonic steps above middle C / 6, a sharp +1/12, a "
            f"flat -1/12, a rest {REST_STEPS} / 6, <unk> {UNKNOWN_STEPS} / 6; duration = "
            "log2(1 / beats)"
        )

    def fit(self, songs: Sequence[Song], spec: WindowSpec, run: Run) -> Trained:
        vocab = self.vocabulary(songs)
        indices = [vocab.encode(s.tokens) for s in songs]
        _, keras = setup_tensorflow()
        data = make_dataset(indices, input_table(vocab, self.inputs), spec.window)
        keras.utils.set_random_seed(run.seed)
        model = self.build(spec, len(vocab))
        trainer = Trainer(model, self, data, spec, run.seed)
        model_of = functools.partial(Model.of, self, spec, vocab)
        history = trainer.fit(spec.epochs, spec.until_perfect, run.on_epochs,
                              run.validator(model_of), spec.patience, spec.min_delta,
                              run.checkpoint)  # fmt: skip
        return Trained(model_of(model.get_weights()), history, model)


class Perceptron(WindowKind):
    """The chapter's multilayer perceptron: the window's inputs flattened, two relu layers."""

    name, spec = "mlp", WindowSpec(batch=10)

    def weight_shapes(self, spec, vocab_size):
        u, w = spec.units, spec.window * self.features
        return [(w, u), (u,), (u, u), (u,), (u, vocab_size), (vocab_size,)]

    def build(self, spec, vocab_size):
        import keras

        # Fixed layer names: Keras's automatic ones count models built earlier in the process.
        return keras.Sequential(
            [
                keras.Input(shape=(spec.window, self.features), name="notes"),
                keras.layers.Flatten(name="flat"),  # the chapter's 4 features: a reshape only
                keras.layers.Dense(spec.units, activation="relu", name="hidden_1"),
                keras.layers.Dense(spec.units, activation="relu", name="hidden_2"),
                keras.layers.Dense(vocab_size, activation="softmax", name="next_note"),
            ],
            name=self.name,
        )

    def window_logits(self, p, x):
        w1, b1, w2, b2, w3, b3 = p.weights
        full = np.zeros((len(x), p.spec.window, x.shape[2]), np.float32)
        full[:, p.spec.window - x.shape[1] :] = x  # tokens before the song's start are 0
        hidden = np.maximum(matmul(full.reshape(len(x), -1), w1) + b1, 0)
        hidden = np.maximum(matmul(hidden, w2) + b2, 0)
        return matmul(hidden, w3) + b3, None


class WindowLSTM(WindowKind):
    """The chapter's LSTM over the window's notes, then a softmax; stateful or not."""

    def __init__(self, name: str, spec: WindowSpec, stateful: bool, inputs: str) -> None:
        self.name, self.spec, self.stateful, self.inputs = name, spec, stateful, inputs

    def weight_shapes(self, spec, vocab_size):
        u, f = spec.units, self.features
        return [(f, 4 * u), (u, 4 * u), (4 * u,), (u, vocab_size), (vocab_size,)]

    def build(self, spec, vocab_size):
        import keras

        shape = dict(batch_shape=(spec.batch, spec.window, self.features))
        if not self.stateful:
            shape = dict(shape=(spec.window, self.features))
        return keras.Sequential(
            [
                keras.Input(**shape, name="notes"),
                keras.layers.LSTM(
                    spec.units,
                    stateful=self.stateful,
                    unroll=spec.window <= UNROLL_UP_TO,
                    name="lstm",
                ),
                keras.layers.Dense(vocab_size, activation="softmax", name="next_note"),
            ],
            name=self.name.replace("-", "_"),
        )

    def window_logits(self, p, x):
        kernel, recurrent, bias, dense, dense_bias = p.weights
        full = x.shape[1] == p.spec.window
        h0, c0 = p.state if self.stateful and full else (np.zeros_like(s) for s in p.state)
        h, c = lstm_steps(x, h0, c0, kernel, recurrent, bias)
        return matmul(h, dense) + dense_bias, (h, c) if self.stateful else None


# The chapter's batch sizes: 10 and 14 windows; a stateful LSTM reads one window at a time.
MLP = Perceptron()
LSTM = WindowLSTM("lstm", WindowSpec(batch=14), stateful=False, inputs="index")
STATEFUL = WindowLSTM("stateful", WindowSpec(batch=1), stateful=True, inputs="index")
STATEFUL_FEATURES = WindowLSTM(
    "stateful-features", WindowSpec(batch=1), stateful=True, inputs="features"
)


@dataclass(frozen=True)
class Dataset:
    """Every song's windows, concatenated in song order."""

    x: np.ndarray  # (windows, window, features) float32
    y: np.ndarray  # (windows,) vocabulary indices of the next note
    song_starts: np.ndarray  # (windows,) bool: a song's first window (stateful models reset)
    vocab_size: int

    @property
    def y_one_hot(self) -> np.ndarray:
        return one_hot(self.y, self.vocab_size)


def make_dataset(songs: Sequence[Sequence[int]], table: np.ndarray, window: int) -> Dataset:
    """The chapter's seq2dataset over each song; windows never cross from one song to the next."""
    xs, ys, starts = [], [], []
    for indices in songs:
        w, y = windows(indices, window)
        xs.append(table[w])  # (n, window, features)
        ys.append(y)
        starts.append(np.arange(len(y)) == 0)
    x = np.concatenate(xs).astype(np.float32)
    return Dataset(x, np.concatenate(ys), np.concatenate(starts), len(table))


def epoch_order(seed: int, epoch: int, n: int, kind: WindowKind) -> np.ndarray:
    """Window order for one epoch: shuffled for stateless models, as Keras's fit does by
    default; in song order for stateful ones (the chapter's shuffle=False)."""
    if kind.stateful:
        return np.arange(n)
    return np.random.default_rng((seed, epoch)).permutation(n)


def streams(song_starts: np.ndarray, batch: int) -> np.ndarray:
    """A stateful model's ``batch`` streams: the songs dealt longest first to the stream with
    the fewest windows so far (streams end nearly together), each stream reading its songs in
    their order. Returns (steps, batch) window indices, -1 where a stream has ended. With
    batch 1: every window in song order, as the chapter."""
    starts = np.flatnonzero(song_starts)
    ends = np.append(starts[1:], len(song_starts))
    lanes: list[list[int]] = [[] for _ in range(batch)]
    sizes = [0] * batch
    for song in sorted(range(len(starts)), key=lambda i: starts[i] - ends[i]):  # longest first
        lane = sizes.index(min(sizes))
        lanes[lane].append(song)
        sizes[lane] += ends[song] - starts[song]
    out = np.full((max(sizes), batch), -1, dtype=np.int32)
    for b, songs in enumerate(lanes):
        windows = [w for song in sorted(songs) for w in range(starts[song], ends[song])]
        out[: len(windows), b] = windows
    return out


def epoch_batches(seed: int, epoch: int, data: Dataset, kind: WindowKind, batch: int) -> np.ndarray:
    """The windows of each step of one epoch: (steps, batch) indices, -1 for none (Keras's
    last, smaller batch; a stateful stream that has ended)."""
    if kind.stateful:
        return streams(data.song_starts, batch)
    order = epoch_order(seed, epoch, len(data.y), kind)
    steps = -(-len(order) // batch)
    return np.pad(order, (0, steps * batch - len(order)), constant_values=-1).reshape(steps, batch)


def reset_states(model) -> None:
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


class Trainer(EpochLoop):
    """Drives a compiled train step over many epochs per call (see the module docstring)."""

    def __init__(self, model, kind: WindowKind, data: Dataset, spec: WindowSpec, seed: int) -> None:
        tf, keras = setup_tensorflow()
        self.tf, self.keras = tf, keras
        self.model, self.kind, self.seed = model, kind, seed
        self.batch = spec.batch
        self.data = data
        # the chapter's optimizer="adam": Keras's defaults, its learning rate the spec's
        self.optimizer = keras.optimizers.Adam(learning_rate=spec.learning_rate)
        self.optimizer.build(model.trainable_variables)
        self.x = tf.constant(data.x)
        self.y = tf.constant(data.y_one_hot)
        self.keep = tf.constant(1.0 - data.song_starts, tf.float32)  # 0 at each song's start
        self.n = len(data.y)
        self.steps = epoch_batches(seed, 0, data, kind, self.batch).shape[0]
        self._step = tf.function(self._train_step, jit_compile=True)
        self._predict = tf.function(self._predict_step, jit_compile=True)
        self._runs = {}  # stop-when-perfect or not -> compiled loop (compiled when first used)

    def _run(self, orders, stop_when_perfect: bool):
        if stop_when_perfect not in self._runs:
            tf = self.tf
            order = tf.TensorSpec([None, self.steps, self.batch], tf.int32)  # per epoch
            self._runs[stop_when_perfect] = tf.function(
                functools.partial(self._run_epochs, stop_when_perfect=stop_when_perfect),
                input_signature=[order],
            )
        return self._runs[stop_when_perfect](orders)

    def _keep_state(self, keep):
        """Multiply each row's LSTM state by ``keep`` (batch,) (0 resets it): inside the
        compiled step this costs nothing, where a reset branch would cost a graph op."""
        for layer in self.model.layers:
            if getattr(layer, "stateful", False):
                for state in layer.states:
                    state.assign(state * keep[:, None])

    def _rows(self, rows):
        """A step's windows: their inputs, one-hot labels, weights (0 for none) and what to
        keep of each row's state (0 at a song's first window or after its stream's end)."""
        tf = self.tf
        weight = tf.cast(rows >= 0, tf.float32)
        rows = tf.maximum(rows, 0)
        keep = tf.gather(self.keep, rows) * weight if self.kind.stateful else weight
        return tf.gather(self.x, rows), tf.gather(self.y, rows), weight, keep

    def _train_step(self, x, y, keep, weight):
        """One Adam update on a batch; rows of weight 0 (padding to one compiled shape) do not
        count, so the loss is the mean over the real rows, as fit computes it."""
        tf = self.tf
        self._keep_state(keep)
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            p = self.model(x, training=True)
            losses = self.keras.losses.categorical_crossentropy(y, p)
            loss = tf.reduce_sum(losses * weight) / tf.reduce_sum(weight)
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        right = tf.cast(tf.argmax(p, -1) == tf.argmax(y, -1), tf.float32)
        return loss, tf.reduce_sum(right * weight)

    def _predict_step(self, x, keep):
        self._keep_state(keep)
        return self.tf.argmax(self.model(x, training=False), -1, output_type=self.tf.int32)

    def _count_right(self, order):
        """Windows predicted right by the current weights, with the state as the chapter's
        evaluate and one-step prediction have it (reset, then carried through each song)."""
        tf = self.tf
        labels = tf.argmax(self.y, -1, output_type=tf.int32)
        if not self.kind.stateful:
            return tf.reduce_sum(
                tf.cast(self._predict(self.x, tf.ones([self.n])) == labels, tf.int32)
            )
        right = tf.constant(0)
        for b in tf.range(self.steps):
            x, _, weight, keep = self._rows(order[b])
            rows = tf.maximum(order[b], 0)
            hit = tf.cast(self._predict(x, keep) == tf.gather(labels, rows), tf.float32)
            right += tf.cast(tf.reduce_sum(hit * weight), tf.int32)
        reset_states(self.model)
        return right

    def _run_epochs(self, orders, stop_when_perfect: bool):
        tf = self.tf
        losses = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        accuracies = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        perfect = tf.constant(False)
        for e in tf.range(tf.shape(orders)[0]):
            total_loss, total_right = tf.constant(0.0), tf.constant(0.0)
            # A stateful kind reads its streams in song order, the state carried between
            # windows and reset at each song's first window (so at each epoch too, as after
            # the chapter's fit); stateless kinds read shuffled windows.
            for b in tf.range(self.steps):
                x, y, weight, keep = self._rows(orders[e][b])
                loss, right = self._step(x, y, keep, weight)
                total_loss += loss * tf.reduce_sum(weight)
                total_right += right
            losses = losses.write(e, total_loss / self.n)
            accuracies = accuracies.write(e, total_right / self.n)
            if stop_when_perfect:
                perfect = self._count_right(orders[e]) == self.n
                if perfect:
                    break
        reset_states(self.model)
        return losses.stack(), accuracies.stack(), perfect

    def _epochs(self, first: int, count: int, until_perfect: bool):
        orders = np.stack(
            [
                epoch_batches(self.seed, e, self.data, self.kind, self.batch)
                for e in range(first, first + count)
            ]
        )
        losses, accuracies, perfect = self._run(
            self.tf.constant(orders, self.tf.int32), until_perfect
        )
        return losses.numpy(), accuracies.numpy(), bool(perfect)
