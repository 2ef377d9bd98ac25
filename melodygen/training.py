"""Fitting models with the chapter's arithmetic, without its per-call overhead (TensorFlow side).

The chapter calls ``fit`` once per epoch and Keras then pays Python overhead on every batch: for
a stateful model that is 100,000 batch-1 steps over 2000 epochs. Here one train step (forward,
gradient, Adam update) is an XLA-compiled function, and a TensorFlow graph loop drives it over
many epochs per call, resetting the LSTM state where the chapter does: at each epoch, at each
song's first window, and before evaluating. Windows, their order, batch sizes and Adam updates
are the chapter's: tests check the weights against the chapter's own loop.

TensorFlow is imported by ``setup_tensorflow`` when training starts, never at import time.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from melodygen import encoding
from melodygen.files import deterministic_zip
from melodygen.models import DEFAULT_UNITS, DEFAULT_WINDOW, KINDS, Kind, Model, Size
from melodygen.notation import Song

SECONDS_PER_CALL = 0.3  # epochs per compiled call adapt so progress updates this often
MAX_EPOCHS_PER_CALL = 500


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """TensorFlow's C++ libraries log banners to fd 2 as they load, before any log level
    applies; a progress bar should not scroll under them."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def setup_tensorflow() -> tuple[Any, Any]:
    """Import TensorFlow and Keras quietly, once; returns (tf, keras).

    The chapter's models run batches of 1 to 14 through 128 units: one intra-op thread beats a
    pool's hand-offs on ops this small (twice as fast here, for the chapter's loop as for ours).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _quiet_stderr():
        import keras
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")  # each Trainer traces its own functions: no retrace advice
    with contextlib.suppress(RuntimeError):  # too late once TensorFlow has run an op; keep it
        tf.config.threading.set_intra_op_parallelism_threads(1)
    return tf, keras


@dataclass(frozen=True)
class TrainConfig:
    model: str = "stateful"  # one of models.KINDS
    window: int = DEFAULT_WINDOW  # notes in, the next one out (the chapter's 4)
    units: int = DEFAULT_UNITS  # Dense / LSTM width (the chapter's 128)
    epochs: int = 2000  # the chapter's 2000; --until-perfect may stop sooner
    seed: int = 5  # the chapter's np.random.seed(5): initial weights and shuffling
    until_perfect: bool = False  # stop once every window (hence the full song) is right

    @property
    def kind(self) -> Kind:
        return KINDS[self.model]

    @property
    def size(self) -> Size:
        return Size(units=self.units, window=self.window)


@dataclass(frozen=True)
class Dataset:
    """Every song's windows, concatenated in song order."""

    x: np.ndarray  # (windows, window, features) float32
    y: np.ndarray  # (windows,) vocabulary indices of the next note
    song_starts: np.ndarray  # (windows,) bool: a song's first window (stateful models reset)
    vocab_size: int

    @property
    def y_one_hot(self) -> np.ndarray:
        return encoding.one_hot(self.y, self.vocab_size)


def make_dataset(songs: Sequence[Sequence[int]], table: np.ndarray, window: int) -> Dataset:
    """The chapter's seq2dataset over each song; windows never cross from one song to the next."""
    xs, ys, starts = [], [], []
    for indices in songs:
        w, y = encoding.windows(indices, window)
        xs.append(table[w])  # (n, window, features)
        ys.append(y)
        starts.append(np.arange(len(y)) == 0)
    x = np.concatenate(xs).astype(np.float32)
    return Dataset(x, np.concatenate(ys), np.concatenate(starts), len(table))


def epoch_order(seed: int, epoch: int, n: int, kind: Kind) -> np.ndarray:
    """Window order for one epoch: shuffled for stateless models, as Keras's fit does by
    default; in song order for stateful ones (the chapter's shuffle=False)."""
    if kind.stateful:
        return np.arange(n)
    return np.random.default_rng((seed, epoch)).permutation(n)


@dataclass
class History:
    loss: list[float] = field(default_factory=list)  # per epoch, mean over windows
    accuracy: list[float] = field(default_factory=list)  # per epoch, as the weights changed
    perfect_at: int | None = None  # epochs after which every window was predicted right
    seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.loss)


def reset_states(model) -> None:
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


class Trainer:
    """Drives a compiled train step over many epochs per call (see the module docstring)."""

    def __init__(self, model, kind: Kind, data: Dataset, seed: int) -> None:
        tf, keras = setup_tensorflow()
        self.tf, self.keras = tf, keras
        self.model, self.kind, self.seed = model, kind, seed
        self.optimizer = keras.optimizers.Adam()  # the chapter's optimizer="adam" defaults
        self.optimizer.build(model.trainable_variables)
        self.x = tf.constant(data.x)
        self.y = tf.constant(data.y_one_hot)
        self.keep = tf.constant(1.0 - data.song_starts, tf.float32)  # 0 at each song's start
        self.n = len(data.y)
        self._step = tf.function(self._train_step, jit_compile=True)
        self._predict = tf.function(self._predict_step, jit_compile=True)
        self._runs = {}  # stop-when-perfect or not -> compiled loop (compiled when first used)

    def _run(self, orders, stop_when_perfect: bool):
        if stop_when_perfect not in self._runs:
            tf = self.tf
            order = tf.TensorSpec([None, self.n], tf.int32)  # window order, one row per epoch
            self._runs[stop_when_perfect] = tf.function(
                functools.partial(self._run_epochs, stop_when_perfect=stop_when_perfect),
                input_signature=[order],
            )
        return self._runs[stop_when_perfect](orders)

    def _keep_state(self, keep):
        """Multiply the LSTM state by ``keep`` (0 resets it): inside the compiled step this costs
        nothing, where a reset branch in the loop would cost a graph op per window."""
        for layer in self.model.layers:
            if getattr(layer, "stateful", False):
                for state in layer.states:
                    state.assign(state * keep)

    def _train_step(self, x, y, keep, weight):
        """One Adam update on a batch; ``weight`` is 0 for the rows that pad Keras's last,
        smaller batch to the full size (one compiled shape), so the loss is the mean over the
        real rows, as fit computes it."""
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

    def _count_right(self):
        """Windows predicted right by the current weights, with the state as the chapter's
        evaluate and one-step prediction have it (reset, then carried through each song)."""
        tf = self.tf
        labels = tf.argmax(self.y, -1, output_type=tf.int32)
        if not self.kind.stateful:
            return tf.reduce_sum(
                tf.cast(self._predict(self.x, tf.constant(1.0)) == labels, tf.int32)
            )
        right = tf.constant(0)
        for i in tf.range(self.n):
            predicted = self._predict(self.x[i][None], self.keep[i])
            right += tf.cast(predicted[0] == labels[i], tf.int32)
        reset_states(self.model)
        return right

    def _run_epochs(self, orders, stop_when_perfect: bool):
        tf = self.tf
        n, batch = self.n, self.kind.batch_size
        batches = -(-n // batch)
        # Keras's last batch is smaller: pad it with weight-0 rows to one compiled shape.
        weights = tf.reshape(tf.range(batches * batch) < n, (batches, batch))
        weights = tf.cast(weights, tf.float32)
        losses = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        accuracies = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        perfect = tf.constant(False)
        for e in tf.range(tf.shape(orders)[0]):
            total_loss, total_right = tf.constant(0.0), tf.constant(0.0)
            order = tf.reshape(tf.pad(orders[e], [[0, batches * batch - n]]), (batches, batch))
            # A stateful kind trains on batch 1 in song order, the state carried between
            # windows; keep is 0 at each song's first window, so the state is reset at each
            # epoch, as after the chapter's fit, and between songs. Stateless kinds keep 1.
            for b in tf.range(batches):
                rows = order[b]
                keep = self.keep[rows[0]] if self.kind.stateful else tf.constant(1.0)
                loss, right = self._step(
                    tf.gather(self.x, rows), tf.gather(self.y, rows), keep, weights[b]
                )
                total_loss += loss * tf.reduce_sum(weights[b])
                total_right += right
            losses = losses.write(e, total_loss / n)
            accuracies = accuracies.write(e, total_right / n)
            if stop_when_perfect:
                perfect = self._count_right() == n
                if perfect:
                    break
        reset_states(self.model)
        return losses.stack(), accuracies.stack(), perfect

    def fit(
        self,
        epochs: int,
        until_perfect: bool = False,
        on_epochs: Callable[[History], None] | None = None,
    ) -> History:
        """Train ``epochs`` epochs or until perfect; ``on_epochs`` sees the history before the
        first call (empty: compiling) and after each."""
        tf = self.tf
        history = History()
        if on_epochs is not None:
            on_epochs(history)
        start = time.perf_counter()
        chunk = 1
        while history.epochs_run < epochs and history.perfect_at is None:
            first = history.epochs_run
            count = min(chunk, epochs - first)
            orders = np.stack(
                [epoch_order(self.seed, e, self.n, self.kind) for e in range(first, first + count)]
            )
            tick = time.perf_counter()
            losses, accuracies, perfect = self._run(tf.constant(orders, tf.int32), until_perfect)
            history.loss += [float(v) for v in losses.numpy()]
            history.accuracy += [float(v) for v in accuracies.numpy()]
            if bool(perfect):
                history.perfect_at = history.epochs_run
            per_epoch = (time.perf_counter() - tick) / max(len(losses), 1)
            chunk = int(np.clip(SECONDS_PER_CALL / max(per_epoch, 1e-6), 1, MAX_EPOCHS_PER_CALL))
            history.seconds = time.perf_counter() - start
            if on_epochs is not None:
                on_epochs(history)
        return history


def _renumber_shared_objects(config: object, ids: dict[int, int]) -> object:
    """Keras names shared objects by their Python id(): number them in order of appearance."""
    if isinstance(config, dict):
        return {
            k: ids.setdefault(v, len(ids) + 1)
            if k == "shared_object_id"
            else _renumber_shared_objects(v, ids)
            for k, v in config.items()
        }
    if isinstance(config, list):
        return [_renumber_shared_objects(v, ids) for v in config]
    return config


def keras_file(model) -> bytes:
    """The model in Keras's native format, without what makes equal models differ in bytes:
    the save date, memory addresses used as shared-object ids, and zip entry times. Keras
    loads the result as before."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="melodygen-keras-") as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            data = f.read()
    fixed = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            entry = zf.read(info.filename)
            if info.filename == "metadata.json":
                meta = json.loads(entry)
                meta.pop("date_saved", None)
                entry = json.dumps(meta).encode()
            elif info.filename == "config.json":
                entry = json.dumps(_renumber_shared_objects(json.loads(entry), {})).encode()
            fixed.append((info.filename, entry))
    return deterministic_zip(fixed)


@dataclass
class Trained:
    model: Model  # the weights as numpy arrays, ready to predict
    history: History
    keras_model: Any  # the Keras model itself, for model.keras and for tests


def train(
    songs: Sequence[Song],
    config: TrainConfig,
    on_epochs: Callable[[History], None] | None = None,
) -> Trained:
    """Fit ``config.model`` on the songs; returns the model and its history."""
    _, keras = setup_tensorflow()
    kind = config.kind
    encoding.require_windows(songs, config.window)
    tokens = [song.tokens for song in songs]
    vocab = encoding.Vocabulary.from_songs(tokens)
    table = encoding.input_table(vocab, kind.inputs)
    data = make_dataset([[vocab.index(t) for t in s] for s in tokens], table, config.window)
    keras.utils.set_random_seed(config.seed)
    model = kind.build(config.size, len(vocab))
    history = Trainer(model, kind, data, config.seed).fit(
        config.epochs, config.until_perfect, on_epochs
    )
    weights = tuple(np.asarray(w) for w in model.get_weights())
    return Trained(Model(kind, config.size, vocab, weights), history, model)
