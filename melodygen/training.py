"""What every trained kind shares (TensorFlow side): TensorFlow's setup, the tf.distribute
strategy, the epoch loop with early stopping on held-out songs, and the Keras file. ``train``
hands the songs to the kind's own ``fit`` and never asks which kind it trains; a kind's fit runs
an EpochLoop over epochs of its own.

TensorFlow is imported by ``setup_tensorflow`` when training starts, never at import time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import math
import os
import resource
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from melodygen.checkpoint import kept as kept_in
from melodygen.errors import BadInput, SystemFailure
from melodygen.evaluation import Measures, evaluate
from melodygen.files import deterministic_zip
from melodygen.notation import Song

if TYPE_CHECKING:
    from melodygen.checkpoint import Checkpoint
    from melodygen.kinds.base import Kind, Model, Spec

DEFAULT_SEED = 5  # initial weights and shuffling: the chapter's np.random.seed(5)
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

    On batches of 1 to 14 windows through 128 units one intra-op thread beats a pool's
    hand-offs (twice as fast here, for the chapter's loop as for ours); batches of whole songs
    use every core (``single_thread=False``). ``cpu_devices`` > 1 splits the host's CPU into
    logical devices, so distributed training runs (and is tested) without GPUs.
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


def strategy_for(devices: int | None, parameter: str | None = None):
    """The tf.distribute strategy: MultiWorkerMirroredStrategy when TF_CONFIG describes a
    cluster, MirroredStrategy over ``devices`` GPUs (or logical CPUs without GPUs), and the
    default strategy on one device. ``devices`` None: every GPU, or the CPU. ``parameter``
    names the setting that asked, for the error when there are fewer."""
    tf, _ = setup_tensorflow(single_thread=False, cpu_devices=devices or 1)
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    found = gpus or tf.config.list_logical_devices("CPU")
    wanted = devices or max(len(gpus), 1)
    if wanted > len(found):
        raise BadInput(f"{wanted} devices asked for, {len(found)} found", parameter)
    if wanted == 1:
        return tf.distribute.OneDeviceStrategy(found[0].name)
    return _mirrored(tuple(d.name for d in found[:wanted]))


def is_chief() -> bool:
    """Whether this process writes what training makes: alone, or the chief of the cluster
    TF_CONFIG describes (its "chief" task, else worker 0, as tf.distribute decides)."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError:
        raise BadInput("TF_CONFIG: not JSON", "TF_CONFIG") from None
    cluster, task = config.get("cluster") or {}, config.get("task") or {}
    if not cluster:
        return True
    kind, index = task.get("type"), int(task.get("index", 0))
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)


def peak_memory_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux counts ru_maxrss in KiB,
    macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


@functools.cache
def _mirrored(devices: tuple[str, ...]):
    """One MirroredStrategy per set of devices in a process: a second one's collective ops
    would take the first one's instance keys (a shape mismatch when two models train)."""
    tf, _ = setup_tensorflow(single_thread=False)
    return tf.distribute.MirroredStrategy(list(devices))


@dataclass
class History:
    loss: list[float] = field(default_factory=list)  # per epoch, mean over windows
    accuracy: list[float] = field(default_factory=list)  # per epoch, as the weights changed
    valid_loss: list[float] = field(default_factory=list)  # per epoch, on held-out songs
    valid_accuracy: list[float] = field(default_factory=list)
    valid_bits: list[float] = field(default_factory=list)  # bits per token
    valid_pitch_bits: list[float] = field(default_factory=list)  # pitch bits per note
    best_epoch: int | None = None  # the epoch whose weights were kept (best validation loss)
    perfect_at: int | None = None  # epochs after which every window was predicted right
    seconds: float = 0.0  # all of training, compiling included
    planned: int = 0  # the most epochs it will run (0: counted, not trained)
    epoch_seconds: list[float] = field(default_factory=list)  # per epoch, validating excluded
    # (the first call's include compiling: seconds_per_epoch leaves them out)

    @property
    def seconds_per_epoch(self) -> float:
        later = self.epoch_seconds[1:] or self.epoch_seconds
        return float(np.median(later)) if later else math.nan

    @property
    def epochs_run(self) -> int:
        return len(self.loss)


Validate = Callable[[list[np.ndarray]], Measures]  # weights -> the held-out songs' measures


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
        checkpoint: Checkpoint | None = None,
    ) -> History:
        """Train ``epochs`` epochs, or until perfect, or until ``patience`` epochs bring no
        validation loss ``min_delta`` below the best (whose weights are then kept: Keras's
        EarlyStopping with restore_best_weights). ``on_epochs`` sees the
        history before the first call (empty: compiling) and after each; with ``validate``,
        each call is one epoch, measured on the held-out songs. With ``checkpoint``, after each
        call everything the next needs is saved, and a resumed run starts from what was: the
        same epochs as if it had never stopped."""
        history, best, best_weights, chunk, done = History(planned=epochs), math.inf, None, 1, False
        if checkpoint is not None and checkpoint.resume and (saved := checkpoint.load()):
            loop, arrays = saved
            history, chunk, done = History(**loop["history"]), loop["chunk"], loop["done"]
            best = math.inf if loop["best"] is None else loop["best"]
            state = self._state()
            for variable, value in zip(state, arrays[: len(state)], strict=True):
                variable.assign(value)
            best_weights = arrays[len(state) :] or None
        if on_epochs is not None:
            on_epochs(history)
        start = time.perf_counter() - history.seconds
        while not done and history.epochs_run < epochs and history.perfect_at is None:
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
            if validate is not None:
                measures = validate(self.model.get_weights())
                history.valid_loss.append(measures.loss)
                history.valid_accuracy.append(measures.accuracy)
                history.valid_bits.append(measures.bits_per_token)
                history.valid_pitch_bits.append(measures.pitch_bits_per_note)
                if measures.loss < best - min_delta:
                    best, best_weights = measures.loss, self.model.get_weights()
                    history.best_epoch = history.epochs_run
                done = patience is not None and history.epochs_run - history.best_epoch >= patience
            history.seconds = time.perf_counter() - start
            if checkpoint is not None and checkpoint.writes:
                loop = {"history": dataclasses.asdict(history), "chunk": chunk, "done": done,
                        "best": None if math.isinf(best) else best}  # fmt: skip
                checkpoint.save(loop, [v.numpy() for v in self._state()] + (best_weights or []))
            if on_epochs is not None:
                on_epochs(history)
        if best_weights is not None:
            self.model.set_weights(best_weights)
        return history

    def _state(self) -> list:
        """Every variable the next epoch depends on: the model's (weights, and the random
        streams' states of its dropout layers) and its optimizer's (Adam's moments, its step)."""
        return [*self.model.variables, *self.optimizer.variables]


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


@dataclass(frozen=True)
class Run:
    """What a kind's fit is told besides its songs and its spec."""

    seed: int  # initial weights and shuffling
    on_epochs: Callable[[History], None] | None = None  # hears of the epochs (a progress bar)
    valid: Sequence[Song] = ()  # held-out songs, measured after each epoch
    base: Model | None = None  # the weights to start from (fine-tuning), else random ones
    checkpoint: Checkpoint | None = None  # where the epochs are kept, to resume from

    def validator(self, model_of: Callable[[list[np.ndarray]], Model]) -> Validate | None:
        """The held-out songs' measures of the weights, which ``model_of`` makes a model of;
        None without held-out songs."""
        if not self.valid:
            return None
        return lambda weights: evaluate(model_of(weights), self.valid, full_song=False).overall


@dataclass
class Trained:
    model: Model  # the weights as numpy arrays, ready to predict
    history: History
    keras_model: Any = None  # the Keras model itself, for model.keras and for tests


def train(
    kind: Kind,
    spec: Spec,
    songs: Sequence[Song],
    seed: int,
    on_epochs: Callable[[History], None] | None = None,
    valid: Sequence[Song] = (),
    base: Model | None = None,
    checkpoint: Checkpoint | None = None,
) -> Trained:
    """Fit a model of the kind on the songs (from the ``base`` model's weights, if given),
    measuring it on the ``valid`` songs after each epoch, keeping its epochs in ``checkpoint``
    (if given: a kind trained by epochs); returns the model (the best on ``valid``, if any) and
    its history."""
    for song in songs:
        if reason := kind.too_short(song, spec):
            raise BadInput(f"{song.source}: {reason}")
    try:
        return kind.fit(songs, spec, Run(seed, on_epochs, valid, base, checkpoint))
    except Exception as e:
        tf = sys.modules.get("tensorflow")
        if tf is None or not isinstance(e, tf.errors.UnavailableError):
            raise
        done = checkpoint.epochs_done() if checkpoint is not None else None  # a worker died:
        kept = f": {kept_in(done, checkpoint.directory)}" if done else ""
        raise SystemFailure(
            f"a worker of the cluster TF_CONFIG describes stopped answering"
            f"{kept}; start every worker again with --resume"
        ) from None
