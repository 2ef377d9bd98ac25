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
import math
import os
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from melodygen import encoding
from melodygen.errors import BadInput
from melodygen.files import deterministic_zip
from melodygen.models import (
    DEFAULT_ORDER,
    DEFAULT_UNITS,
    DEFAULT_WINDOW,
    KINDS,
    Kind,
    Model,
    Repeats,
    Size,
    factored_inputs,
    song_inputs,
)
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
def setup_tensorflow(single_thread: bool = True, cpu_devices: int = 1) -> tuple[Any, Any]:
    """Import TensorFlow and Keras quietly, once; returns (tf, keras). The first call in a
    process decides the threads and devices (TensorFlow fixes them when it runs its first op).

    The chapter's models run batches of 1 to 14 through 128 units: one intra-op thread beats a
    pool's hand-offs on ops this small (twice as fast here, for the chapter's loop as for ours);
    a song-rnn's batches of songs use every core. ``cpu_devices`` > 1 splits the host's CPU
    into logical devices, so distributed training runs (and is tested) without GPUs.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _quiet_stderr():
        import keras
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")  # each Trainer traces its own functions: no retrace advice
    with contextlib.suppress(RuntimeError):  # too late once TensorFlow has run an op; keep it
        if single_thread:
            tf.config.threading.set_intra_op_parallelism_threads(1)
        if cpu_devices > 1 and not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            config = tf.config.LogicalDeviceConfiguration()
            tf.config.set_logical_device_configuration(cpu, [config] * cpu_devices)
    return tf, keras


def strategy_for(devices: int | None):
    """The tf.distribute strategy: MultiWorkerMirroredStrategy when TF_CONFIG describes a
    cluster, MirroredStrategy over ``devices`` GPUs (or logical CPUs without GPUs), and the
    default strategy on one device. ``devices`` None: every GPU, or the CPU."""
    tf, _ = setup_tensorflow(single_thread=False, cpu_devices=devices or 1)
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    found = gpus or tf.config.list_logical_devices("CPU")
    wanted = devices or max(len(gpus), 1)
    if wanted > len(found):
        raise BadInput(f"{wanted} devices asked for, {len(found)} found", parameter="devices")
    if wanted == 1:
        return tf.distribute.OneDeviceStrategy(found[0].name)
    return tf.distribute.MirroredStrategy([d.name for d in found[:wanted]])


@dataclass(frozen=True)
class TrainConfig:
    model: str = "stateful"  # one of models.KINDS
    window: int = DEFAULT_WINDOW  # notes in, the next one out (the chapter's 4)
    units: int = DEFAULT_UNITS  # Dense / LSTM width (the chapter's 128)
    epochs: int = 2000  # the chapter's 2000; --until-perfect or --patience may stop sooner
    seed: int = 5  # the chapter's np.random.seed(5): initial weights and shuffling
    until_perfect: bool = False  # stop once every window (hence the full song) is right
    batch: int | None = None  # windows (or, stateful, songs side by side) per step; None: the
    # chapter's batch size for the kind
    patience: int | None = None  # stop after this many epochs without a better validation loss
    min_delta: float = 0.0  # a validation loss counts as better when it is this much lower
    order: int = DEFAULT_ORDER  # n-gram order
    layers: int = 2  # song-rnn: stacked LSTM layers
    embedding: int = 64  # song-rnn: input width (3/4 pitch, 1/4 length)
    dropout: float = 0.3  # song-rnn: on the inputs and on each LSTM's output
    learning_rate: float | None = None  # Adam's; None: the chapter's default (0.001), or
    # SONG_LEARNING_RATE for a song-rnn, multiplied by ``decay`` after each epoch
    decay: float | None = None  # song-rnn; None: SONG_DECAY
    transpose: tuple[int, int] = (0, 0)  # song-rnn: each epoch, each song moved by a random
    # number of semitones in this range (inclusive)
    chunk: int = 64  # song-rnn: steps per truncated back-propagation
    devices: int | None = None  # song-rnn: replicas (tf.distribute); None: all GPUs or the CPU

    @property
    def kind(self) -> Kind:
        return KINDS[self.model]

    @property
    def size(self) -> Size:
        return Size(
            units=self.units,
            window=self.window,
            order=self.order,
            layers=self.layers,
            embedding=self.embedding,
        )


def configure(options: dict, songs: int) -> TrainConfig:
    """The settings for ``songs`` songs from the options a user gave: the kind is song-rnn
    from corpus.MIN_SPLIT_SONGS songs on, the chapter's stateful LSTM below; what is not given
    is the kind's default, then TrainConfig's."""
    from melodygen.corpus import MIN_SPLIT_SONGS

    model = options.get("model") or ("song-rnn" if songs >= MIN_SPLIT_SONGS else "stateful")
    return TrainConfig(**{**KINDS[model].defaults, **options, "model": model})


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


def epoch_batches(seed: int, epoch: int, data: Dataset, kind: Kind, batch: int) -> np.ndarray:
    """The windows of each step of one epoch: (steps, batch) indices, -1 for none (Keras's
    last, smaller batch; a stateful stream that has ended)."""
    if kind.stateful:
        return streams(data.song_starts, batch)
    order = epoch_order(seed, epoch, len(data.y), kind)
    steps = -(-len(order) // batch)
    return np.pad(order, (0, steps * batch - len(order)), constant_values=-1).reshape(steps, batch)


@dataclass
class History:
    loss: list[float] = field(default_factory=list)  # per epoch, mean over windows
    accuracy: list[float] = field(default_factory=list)  # per epoch, as the weights changed
    valid_loss: list[float] = field(default_factory=list)  # per epoch, on held-out songs
    valid_accuracy: list[float] = field(default_factory=list)
    valid_bits: list[float] = field(default_factory=list)  # bits per token
    best_epoch: int | None = None  # the epoch whose weights were kept (best validation loss)
    perfect_at: int | None = None  # epochs after which every window was predicted right
    seconds: float = 0.0  # all of training, compiling included
    epoch_seconds: list[float] = field(default_factory=list)  # per epoch, compiling excluded
    # (the first call's epochs are charged the median of the later ones)

    @property
    def seconds_per_epoch(self) -> float:
        later = self.epoch_seconds[1:] or self.epoch_seconds
        return float(np.median(later)) if later else math.nan

    @property
    def epochs_run(self) -> int:
        return len(self.loss)


Validate = Callable[[list[np.ndarray]], Any]  # weights -> evaluation.Measures on held-out songs


def reset_states(model) -> None:
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


class EpochLoop:
    """Epochs until done: the number asked for, or until perfect, or until ``patience``
    epochs bring no better held-out loss; the best epoch's weights are kept. Subclasses run
    the epochs (``_epochs``)."""

    model: Any
    max_epochs_per_call: int = MAX_EPOCHS_PER_CALL

    def _epochs(self, first: int, count: int, until_perfect: bool):
        """Run epochs first..first+count-1; returns (losses, accuracies, perfect)."""
        raise NotImplementedError

    def fit(
        self,
        epochs: int,
        until_perfect: bool = False,
        on_epochs: Callable[[History], None] | None = None,
        validate: Validate | None = None,
        patience: int | None = None,
        min_delta: float = 0.0,
    ) -> History:
        """Train ``epochs`` epochs, or until perfect, or until ``patience`` epochs bring no
        validation loss ``min_delta`` below the best (whose weights are then kept: Keras's
        EarlyStopping with restore_best_weights). ``on_epochs`` sees the
        history before the first call (empty: compiling) and after each; with ``validate``,
        each call is one epoch, measured on the held-out songs."""
        history = History()
        if on_epochs is not None:
            on_epochs(history)
        start = time.perf_counter()
        chunk, best, best_weights = 1, math.inf, None
        while history.epochs_run < epochs and history.perfect_at is None:
            count = 1 if validate else min(chunk, epochs - history.epochs_run)
            tick = time.perf_counter()
            losses, accuracies, perfect = self._epochs(history.epochs_run, count, until_perfect)
            history.loss += [float(v) for v in losses]
            history.accuracy += [float(v) for v in accuracies]
            if perfect:
                history.perfect_at = history.epochs_run
            per_epoch = (time.perf_counter() - tick) / max(len(losses), 1)
            history.epoch_seconds += [per_epoch] * len(losses)
            chunk = int(
                np.clip(SECONDS_PER_CALL / max(per_epoch, 1e-6), 1, self.max_epochs_per_call)
            )
            stop = False
            if validate is not None:
                measures = validate(self.model.get_weights())
                history.valid_loss.append(measures.loss)
                history.valid_accuracy.append(measures.accuracy)
                history.valid_bits.append(measures.bits_per_token)
                if measures.loss < best - min_delta:
                    best, best_weights = measures.loss, self.model.get_weights()
                    history.best_epoch = history.epochs_run
                stop = patience is not None and history.epochs_run - history.best_epoch >= patience
            history.seconds = time.perf_counter() - start
            if on_epochs is not None:
                on_epochs(history)
            if stop:
                break
        if best_weights is not None:
            self.model.set_weights(best_weights)
        return history


class Trainer(EpochLoop):
    """Drives a compiled train step over many epochs per call (see the module docstring)."""

    def __init__(
        self, model, kind: Kind, data: Dataset, seed: int, batch: int | None = None
    ) -> None:
        tf, keras = setup_tensorflow()
        self.tf, self.keras = tf, keras
        self.model, self.kind, self.seed = model, kind, seed
        self.batch = batch or kind.batch_size
        self.data = data
        self.optimizer = keras.optimizers.Adam()  # the chapter's optimizer="adam" defaults
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


# A song-rnn's training, chosen on a split of the Essen training songs (the note of issue 10):
# 64 songs per batch run an epoch in 3/4 of the time 32 take, and Adam at 0.01 then learns as
# fast per epoch as 0.005 does with 32. The decay ends the learning within about 15 epochs
# (at x0.85 the held-out loss still fell 0.005 per epoch after 18 minutes on the whole corpus).
SONG_LEARNING_RATE = 1e-2
SONG_DECAY = 0.75  # the learning rate is multiplied by this after each epoch
SONG_BATCH = 64  # songs per batch


@dataclass(frozen=True)
class SongData:
    """Every training song under every transposition allowed, encoded for a song-rnn."""

    inputs: list[list[np.ndarray]]  # per song, per transposition: (length + 1, 5) input ids
    targets: list[list[np.ndarray]]  # per song, per transposition: (length + 1,) indices
    lengths: np.ndarray  # (songs,) tokens of each song, <end> included


def song_vocabulary(songs: Sequence[Song], kind: Kind, transpose: tuple[int, int]):
    """The vocabulary of every token a transposition in the range can give a training song,
    so that held-out songs in any key are not "unknown"; and each song's transpositions."""
    variants = []
    for song in songs:
        shifts = range(transpose[0], transpose[1] + 1)
        moved = [encoding.transpose(song.notes, k) for k in sorted(shifts, key=abs)]  # 0 first
        variants.append([notes for notes in moved if notes is not None])
    tokens = ([n.token for n in notes] for song in variants for notes in song)
    return encoding.Vocabulary.from_songs(tokens, kind.specials), variants


def repeats(songs: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each song and each step (its length + 1: the last predicts <end>), where the token
    that followed its latest repeat stands (-1: none) and the repeat's length (models.Repeats),
    songs of similar lengths read side by side."""
    out: list = [None] * len(songs)
    order = sorted(range(len(songs)), key=lambda i: len(songs[i]))
    for start in range(0, len(order), 512):
        rows = order[start : start + 512]
        width = max(len(songs[i]) for i in rows)
        padded = np.full((len(rows), width), -2, np.int64)  # never read: after each song's end
        for r, i in enumerate(rows):
            padded[r, : len(songs[i])] = songs[i]
        tracker, steps = Repeats(len(rows)), []
        for t in range(width + 1):
            steps.append(tracker.current())
            if t < width:
                tracker.push(padded[:, t])
        at, length = (np.stack([step[k] for step in steps], 1) for k in (0, 1))
        for r, i in enumerate(rows):
            out[i] = at[r, : len(songs[i]) + 1], length[r, : len(songs[i]) + 1]
    return out


def song_data(variants, vocab: encoding.Vocabulary) -> SongData:
    """The songs' input ids and targets under each transposition. A transposition renames
    tokens one to one, so where a song repeats itself is found once, on its own key."""
    table = factored_inputs(vocab)
    indices = [
        [np.array(vocab.encode(n.token for n in notes)) for notes in song] for song in variants
    ]
    found = repeats([song[0] for song in indices])
    inputs, targets = [], []
    for song, (at, length) in zip(indices, found, strict=True):
        inputs.append([])
        for i in song:
            previous = np.concatenate([[len(vocab)], i])  # <start> first
            follow = np.where(at >= 0, i[np.maximum(at, 0)], -1)
            inputs[-1].append(song_inputs(table, previous, follow, length).astype(np.int32))
        targets.append([np.concatenate([i, [vocab.end]]) for i in song])
    return SongData(inputs, targets, np.array([len(t[0]) for t in targets]))


def song_batches(seed: int, epoch: int, data: SongData, batch: int):
    """One epoch's batches: songs of similar lengths together (little padding), each in one of
    its transpositions, the batches in a shuffled order; all fixed by (seed, epoch)."""
    rng = np.random.default_rng((seed, epoch))
    order = np.lexsort((rng.random(len(data.lengths)), data.lengths))
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(batches)
    choice = [int(rng.integers(len(v))) for v in data.inputs]
    for songs in batches:
        width = int(data.lengths[songs].max())
        x = np.zeros((len(songs), width, 5), np.int32)
        y = np.zeros((len(songs), width), np.int32)
        mask = np.zeros((len(songs), width), np.float32)
        for row, song in enumerate(songs):
            n = data.lengths[song]
            x[row, :n] = data.inputs[song][choice[song]]
            y[row, :n] = data.targets[song][choice[song]]
            mask[row, :n] = 1
        yield x, y, mask


class SongTrainer(EpochLoop):
    """Trains a song-rnn on batches of whole songs: each batch read in chunks of ``chunk``
    steps (truncated back-propagation), the LSTM states carried from chunk to chunk; one
    compiled train step, run on every replica of a tf.distribute strategy."""

    max_epochs_per_call = 1

    def __init__(self, config: TrainConfig, data: SongData, vocab_size: int, strategy) -> None:
        tf, keras = setup_tensorflow(single_thread=False)
        self.tf, self.keras = tf, keras
        self.config, self.data, self.strategy = config, data, strategy
        self.batch = config.batch or SONG_BATCH
        self.rate = config.learning_rate or SONG_LEARNING_RATE
        self.decay = config.decay or SONG_DECAY
        with strategy.scope():
            self.model = config.kind.build(config.size, vocab_size, dropout=config.dropout)
            self.optimizer = keras.optimizers.Adam(learning_rate=self.rate)
            self.optimizer.build(self.model.trainable_variables)
        self.scale = float(self.batch * config.chunk)  # a token weighs the same in any chunk
        self._step = tf.function(
            self._distributed_step,
            input_signature=[
                tf.TensorSpec([None, None, 5], tf.int32),  # (songs, steps, input ids)
                tf.TensorSpec([None, None], tf.int32),  # targets
                tf.TensorSpec([None, None], tf.float32),  # 1 for a song's steps, 0 after
                [tf.TensorSpec([None, config.units], tf.float32)] * (2 * config.layers),
            ],
        )

    def _replica_step(self, ids, target, mask, states):
        tf, keras = self.tf, self.keras
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits, *finals = self.model([ids, *states], training=True)
            nats = keras.losses.sparse_categorical_crossentropy(target, logits, from_logits=True)
            loss = tf.reduce_sum(nats * mask) / self.scale
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        right = tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == target, tf.float32)
        return tf.reduce_sum(nats * mask), tf.reduce_sum(right * mask), finals

    def _distributed_step(self, ids, target, mask, states):
        """The chunk's songs split into contiguous parts, one per replica; the optimizer sums
        their gradients, and their states are gathered back in song order."""
        tf, strategy = self.tf, self.strategy
        replicas = strategy.num_replicas_in_sync
        if replicas == 1:  # nothing to split or gather (6% of the step's time here)
            return strategy.run(self._replica_step, args=(ids, target, mask, states))

        def part(value):
            def mine(ctx):
                n, r = tf.shape(value)[0], ctx.replica_id_in_sync_group
                return value[n * r // replicas : n * (r + 1) // replicas]

            return strategy.experimental_distribute_values_from_function(mine)

        nats, right, finals = strategy.run(
            self._replica_step,
            args=(part(ids), part(target), part(mask), [part(s) for s in states]),
        )
        total = functools.partial(strategy.reduce, tf.distribute.ReduceOp.SUM, axis=None)
        return total(nats), total(right), [strategy.gather(f, axis=0) for f in finals]

    def _epochs(self, first: int, count: int, until_perfect: bool):
        tf, config = self.tf, self.config
        self.optimizer.learning_rate.assign(self.rate * self.decay**first)
        total, right, tokens = 0.0, 0.0, 0.0
        for x, y, mask in song_batches(config.seed, first, self.data, self.batch):
            states = [tf.zeros((len(x), config.units))] * (2 * config.layers)
            for t in range(0, x.shape[1], config.chunk):
                part = slice(t, t + config.chunk)
                nats, hits, states = self._step(x[:, part], y[:, part], mask[:, part], states)
                total, right = total + float(nats), right + float(hits)
            tokens += float(mask.sum())
        return [total / tokens], [right / tokens], False


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
    keras_model: Any = None  # the Keras model itself, for model.keras and for tests


def train(
    songs: Sequence[Song],
    config: TrainConfig,
    on_epochs: Callable[[History], None] | None = None,
    valid: Sequence[Song] = (),
) -> Trained:
    """Fit ``config.model`` on the songs, measuring it on the ``valid`` songs after each epoch;
    returns the model (the best on ``valid``, if any) and its history."""
    from melodygen.evaluation import evaluate

    kind, size = config.kind, config.size
    for song in songs:
        if reason := kind.too_short(song, size):
            raise BadInput(f"{song.source}: {reason}")

    def validate(weights: list[np.ndarray]):
        model = Model(kind, size, vocab, tuple(np.asarray(w) for w in weights))
        return evaluate(model, valid, full_song=False).overall

    if kind.loop == "songs":
        vocab, variants = song_vocabulary(songs, kind, config.transpose)
        strategy = strategy_for(config.devices)
        _, keras = setup_tensorflow(single_thread=False)
        keras.utils.set_random_seed(config.seed)
        trainer: EpochLoop = SongTrainer(config, song_data(variants, vocab), len(vocab), strategy)
    else:
        vocab = encoding.Vocabulary.from_songs((s.tokens for s in songs), kind.specials)
        indices = [vocab.encode(s.tokens) for s in songs]
        if not kind.keras:  # counted, not trained: no TensorFlow, no epochs
            start = time.perf_counter()
            weights = tuple(kind.fit(indices, vocab, size))
            seconds = time.perf_counter() - start
            return Trained(Model(kind, size, vocab, weights), History(seconds=seconds))
        _, keras = setup_tensorflow()
        data = make_dataset(indices, encoding.input_table(vocab, kind.inputs), config.window)
        keras.utils.set_random_seed(config.seed)
        model = kind.build(size, len(vocab), config.batch)
        trainer = Trainer(model, kind, data, config.seed, config.batch)
    history = trainer.fit(
        config.epochs,
        config.until_perfect,
        on_epochs,
        validate if valid else None,
        config.patience,
        config.min_delta,
    )
    weights = tuple(np.asarray(w) for w in trainer.model.get_weights())
    return Trained(Model(kind, size, vocab, weights), history, trainer.model)
