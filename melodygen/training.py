"""Fitting the chapter's models with the chapter's arithmetic, without its per-call overhead.

The chapter calls ``fit`` once per epoch and Keras then pays Python overhead on every batch: for
a stateful model that is 100,000 batch-1 steps over 2000 epochs. Here one train step (forward,
gradient, Adam update) is an XLA-compiled function, and a TensorFlow graph loop drives it over
many epochs per call, resetting the LSTM state where the chapter does: at each epoch, at each
song's first window, and before evaluating. Windows, their order, batch sizes and Adam updates
are the chapter's: tests check the weights against the chapter's own loop.

This is the only module that imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from melodygen import encoding, models
from melodygen.models import TrainConfig
from melodygen.notation import Song


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


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
with _quiet_stderr():
    import keras
    import tensorflow as tf
tf.get_logger().setLevel("ERROR")  # each Trainer traces its own functions: no retracing advice
with contextlib.suppress(RuntimeError):  # too late once TensorFlow has run an op; then keep it
    # The chapter's models run batches of 1 to 14 through 128 units: one thread beats a pool's
    # hand-offs on ops this small (twice as fast here, for the chapter's loop as for ours).
    tf.config.threading.set_intra_op_parallelism_threads(1)

SECONDS_PER_CALL = 0.3  # epochs per compiled call adapt so progress updates this often
MAX_EPOCHS_PER_CALL = 500


@dataclass(frozen=True)
class Dataset:
    """Every song's windows, concatenated in song order."""

    x: np.ndarray  # (windows, window, features) float32; (windows, window) for the MLP
    y: np.ndarray  # (windows,) vocabulary indices of the next note
    song_starts: np.ndarray  # (windows,) bool: a song's first window (stateful models reset)
    vocab_size: int

    @property
    def y_one_hot(self) -> np.ndarray:
        return encoding.one_hot(self.y, self.vocab_size)


def make_dataset(
    songs: Sequence[Sequence[int]], table: np.ndarray, window: int, spec: models.ModelSpec
) -> Dataset:
    """The chapter's seq2dataset over each song; windows never cross from one song to the next."""
    xs, ys, starts = [], [], []
    for indices in songs:
        w, y = encoding.windows(indices, window)
        xs.append(table[w])  # (n, window, features)
        ys.append(y)
        starts.append(np.arange(len(y)) == 0)
    x = np.concatenate(xs).astype(np.float32)
    if not spec.recurrent:
        x = x.reshape(len(x), -1)  # the MLP sees the window as flat features
    return Dataset(x, np.concatenate(ys), np.concatenate(starts), len(table))


def epoch_order(seed: int, epoch: int, n: int, spec: models.ModelSpec) -> np.ndarray:
    """Window order for one epoch: shuffled for stateless models, as Keras's fit does by
    default; in song order for stateful ones (the chapter's shuffle=False)."""
    if spec.stateful:
        return np.arange(n)
    return np.random.default_rng((seed, epoch)).permutation(n)


@dataclass
class History:
    loss: list[float] = field(default_factory=list)  # per epoch, mean over windows
    accuracy: list[float] = field(default_factory=list)  # per epoch, during training
    perfect_at: int | None = None  # epochs after which every window was predicted right
    seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.loss)


def reset_states(model: keras.Model) -> None:
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


class Trainer:
    """Drives a compiled train step over many epochs per call (see the module docstring)."""

    def __init__(
        self, model: keras.Model, spec: models.ModelSpec, data: Dataset, seed: int
    ) -> None:
        self.model, self.spec, self.seed = model, spec, seed
        self.optimizer = keras.optimizers.Adam()  # the chapter's optimizer="adam" defaults
        self.optimizer.build(model.trainable_variables)
        self.loss_fn = keras.losses.CategoricalCrossentropy()
        self.x = tf.constant(data.x)
        self.y = tf.constant(data.y_one_hot)
        self.keep = tf.constant(1.0 - data.song_starts, tf.float32)  # 0 at each song's start
        self.n = len(data.y)
        self._step = tf.function(self._train_step, jit_compile=True)
        self._predict = tf.function(self._predict_step, jit_compile=True)
        self._run = tf.function(
            self._run_epochs,
            input_signature=[
                tf.TensorSpec([None, self.n], tf.int32),  # window order, one row per epoch
                tf.TensorSpec([], tf.bool),  # stop at the first perfect epoch
            ],
        )

    def _keep_state(self, keep: tf.Tensor) -> None:
        """Multiply the LSTM state by ``keep`` (0 resets it): inside the compiled step this costs
        nothing, where a reset branch in the loop would cost a graph op per window."""
        for layer in self.model.layers:
            if getattr(layer, "stateful", False):
                for state in layer.states:
                    state.assign(state * keep)

    def _train_step(
        self, x: tf.Tensor, y: tf.Tensor, keep: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        self._keep_state(keep)
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            p = self.model(x, training=True)
            loss = self.loss_fn(y, p)
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        right = tf.reduce_sum(tf.cast(tf.argmax(p, -1) == tf.argmax(y, -1), tf.float32))
        return loss, right

    def _predict_step(self, x: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
        self._keep_state(keep)
        return tf.argmax(self.model(x, training=False), -1, output_type=tf.int32)

    def _reset(self) -> None:
        reset_states(self.model)

    def _count_right(self) -> tf.Tensor:
        """Windows predicted right by the current weights, with the state as the chapter's
        evaluate and one-step prediction have it (reset, then carried through each song)."""
        labels = tf.argmax(self.y, -1, output_type=tf.int32)
        if not self.spec.stateful:
            return tf.reduce_sum(
                tf.cast(self._predict(self.x, tf.constant(1.0)) == labels, tf.int32)
            )
        right = tf.constant(0)
        for i in tf.range(self.n):
            predicted = self._predict(self.x[i][None], self.keep[i])
            right += tf.cast(predicted[0] == labels[i], tf.int32)
        self._reset()
        return right

    def _run_epochs(self, orders: tf.Tensor, stop_when_perfect: tf.Tensor):
        n, batch = self.n, self.spec.batch_size
        full, rest = divmod(n, batch)
        losses = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        accuracies = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        perfect = tf.constant(False)
        for e in tf.range(tf.shape(orders)[0]):
            total_loss, total_right = tf.constant(0.0), tf.constant(0.0)
            order = orders[e]
            if self.spec.stateful:  # batch 1, in song order, state carried between windows;
                # keep[0] is 0, so the state is reset at each epoch, as after the chapter's fit
                for i in tf.range(n):
                    loss, right = self._step(self.x[i][None], self.y[i][None], self.keep[i])
                    total_loss += loss
                    total_right += right
            else:
                batches = tf.reshape(order[: full * batch], (full, batch))
                for b in tf.range(full):
                    x, y = tf.gather(self.x, batches[b]), tf.gather(self.y, batches[b])
                    loss, right = self._step(x, y, tf.constant(1.0))  # no state to keep
                    total_loss += loss * batch
                    total_right += right
                if rest:  # Keras's last, smaller batch
                    tail = order[full * batch :]
                    x, y = tf.gather(self.x, tail), tf.gather(self.y, tail)
                    loss, right = self._step(x, y, tf.constant(1.0))  # no state to keep
                    total_loss += loss * rest
                    total_right += right
            losses = losses.write(e, total_loss / n)
            accuracies = accuracies.write(e, total_right / n)
            if stop_when_perfect:
                perfect = self._count_right() == n
                if perfect:
                    break
        self._reset()
        return losses.stack(), accuracies.stack(), perfect

    def fit(
        self,
        epochs: int,
        until_perfect: bool = False,
        on_epochs: Callable[[History], None] | None = None,
    ) -> History:
        """Train ``epochs`` epochs or until perfect; ``on_epochs`` sees the history per call."""
        history = History()
        start = time.perf_counter()
        chunk = 1
        while history.epochs_run < epochs and history.perfect_at is None:
            first = history.epochs_run
            count = min(chunk, epochs - first)
            orders = np.stack(
                [epoch_order(self.seed, e, self.n, self.spec) for e in range(first, first + count)]
            )
            tick = time.perf_counter()
            losses, accuracies, perfect = self._run(
                tf.constant(orders, tf.int32), tf.constant(until_perfect)
            )
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


@dataclass
class Trained:
    model: keras.Model
    config: TrainConfig
    vocab: encoding.Vocabulary
    history: History

    @property
    def weights(self) -> list[np.ndarray]:
        return [np.asarray(w) for w in self.model.get_weights()]


def train(
    songs: Sequence[Song],
    config: TrainConfig,
    on_epochs: Callable[[History], None] | None = None,
) -> Trained:
    """Fit ``config.model`` on the songs; returns the model and its history."""
    spec = config.spec
    encoding.require_windows(songs, config.window)
    tokens = [song.tokens for song in songs]
    vocab = encoding.Vocabulary.from_songs(tokens)
    table = encoding.input_table(vocab, spec.inputs)
    data = make_dataset([[vocab.index(t) for t in s] for s in tokens], table, config.window, spec)
    keras.utils.set_random_seed(config.seed)
    model = models.build(spec, len(vocab), config.window, config.units)
    history = Trainer(model, spec, data, config.seed).fit(
        config.epochs, config.until_perfect, on_epochs
    )
    return Trained(model, config, vocab, history)
