"""The model directory (CLI.md): writing it whole or not at all, and loading it without TensorFlow.

``weights.npz`` beside ``model.keras`` holds the same weights for the numpy forward pass, so
composing and evaluating never import TensorFlow. Everything a file depends on is fixed by the
seed, so retraining with the same seed gives the same bytes (``report.json``'s timings aside).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melodygen import __version__, encoding, midi, plots
from melodygen.errors import MelodygenError
from melodygen.files import atomic_directory, read_bytes, write_atomic
from melodygen.generation import Prediction, predict_song
from melodygen.models import SPECS, Forward, ModelSpec
from melodygen.notation import Note, Song, format_song, parse_token

MODEL_FILE = "model.keras"
WEIGHTS_FILE = "weights.npz"
META_FILE = "melodygen.json"
REPORT_FILE = "report.json"
LOSS_PLOT = "loss.png"
FORMAT = "melodygen-model/1"
OUTPUTS = Path("outputs")
LATEST = OUTPUTS / "latest"  # holds the path of the model `train` wrote last
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # zip entry times, so equal contents give equal bytes


def default_dir(songs: Sequence[Song], model: str) -> Path:
    return OUTPUTS / f"{songs[0].name}-{model}"


def song_meta(song: Song) -> dict:
    return {
        "name": song.name,
        "title": song.title,
        "tempo": song.tempo,
        "time": list(song.time) if song.time else None,
        "program": song.program,
        "tokens": song.tokens,
    }


def _deterministic_zip(entries: Sequence[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name, date_time=_FIXED_DATE), data)
    return out.getvalue()


def weights_to_npz(weights: Sequence[np.ndarray]) -> bytes:
    """np.savez's layout (arr_0.npy, ...) with fixed zip times: loadable by np.load."""
    entries = []
    for i, w in enumerate(weights):
        buf = io.BytesIO()
        np.lib.format.write_array(
            buf, np.ascontiguousarray(w, dtype=np.float32), allow_pickle=False
        )
        entries.append((f"arr_{i}.npy", buf.getvalue()))
    return _deterministic_zip(entries)


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


def _normalize_keras_file(path: Path) -> None:
    """Drop what makes equal models differ in bytes: the save date, memory addresses used as
    shared-object ids, and zip entry times. Keras loads the result as before."""
    with zipfile.ZipFile(path) as zf:
        entries = [(info.filename, zf.read(info.filename)) for info in zf.infolist()]
    fixed = []
    for name, data in entries:
        if name == "metadata.json":
            meta = json.loads(data)
            meta.pop("date_saved", None)
            data = json.dumps(meta).encode()
        elif name == "config.json":
            data = json.dumps(_renumber_shared_objects(json.loads(data), {})).encode()
        fixed.append((name, data))
    path.write_bytes(_deterministic_zip(fixed))


def predictions_song(
    songs: Sequence[Song], token_lists: Sequence[Sequence[str]], name: str
) -> Song:
    """The predictions of every song as one song, a whole rest between songs, with the first
    song's tempo, time signature and program."""
    notes: list[Note] = []
    for i, tokens in enumerate(token_lists):
        if i:
            notes.append(Note(None, 1))
        notes += [parse_token(t) for t in tokens]
    first = songs[0]
    return Song(
        tuple(notes),
        name=name,
        title=f"{first.title or first.name} ({name})",
        tempo=first.tempo,
        time=first.time,
        program=first.program,
    )


def report_for(
    config, history, predictions: Sequence[Prediction], songs: Sequence[Song], seconds: float
) -> dict:
    total = sum(p.predictions for p in predictions)
    one_step = sum(p.correct("one_step") for p in predictions)
    return {
        "model": config.model,
        "songs": [s.name for s in songs],
        "epochs": config.epochs,
        "epochs_run": history.epochs_run,
        "perfect_at": history.perfect_at,
        "train_seconds": round(seconds, 3),
        "final_loss": history.loss[-1] if history.loss else None,
        "accuracy": one_step / total,
        "predictions": total,
        "one_step_correct": one_step,
        "full_song_correct": sum(p.correct("full_song") for p in predictions),
        "full_song_reproduced": all(p.correct("full_song") == p.predictions for p in predictions),
        "seed": config.seed,
        "units": config.units,
        "window": config.window,
        "loss_history": history.loss,
        "accuracy_history": history.accuracy,
    }


def prediction_files(
    songs: Sequence[Song], predictions: Sequence[Prediction], vocab: encoding.Vocabulary
) -> dict[str, bytes]:
    """one_step.mid/.txt and full_song.mid/.txt for the songs."""
    files = {}
    for mode in ("one_step", "full_song"):
        tokens = [[vocab.tokens[i] for i in getattr(p, mode)] for p in predictions]
        song = predictions_song(songs, tokens, mode)
        files[f"{mode}.txt"] = format_song(song).encode()
        files[f"{mode}.mid"] = midi.song_to_midi(song)
    return files


def save_model(path: Path, trained, songs: Sequence[Song], seconds: float) -> dict:
    """Predict with the trained model as the chapter does, then write the whole model directory.

    Returns the report. ``trained`` is a training.Trained (duck-typed: TensorFlow stays there).
    """
    config, vocab = trained.config, trained.vocab
    weights = trained.weights
    forward = Forward(config.spec, weights)
    table = encoding.input_table(vocab, config.spec.inputs)
    predictions = [
        predict_song(forward, table, [vocab.index(t) for t in s.tokens], config.window)
        for s in songs
    ]
    report = report_for(config, trained.history, predictions, songs, seconds)
    meta = {
        "format": FORMAT,
        "model": config.model,
        "window": config.window,
        "units": config.units,
        "inputs": config.spec.inputs,
        "vocabulary": list(vocab.tokens),
        "encoding": encoding.describe(config.spec.inputs, len(vocab)),
        "songs": [song_meta(s) for s in songs],
        "seed": config.seed,
        "epochs": config.epochs,
        "weights": WEIGHTS_FILE,
        "versions": versions(),
    }
    files = {
        WEIGHTS_FILE: weights_to_npz(weights),
        META_FILE: json.dumps(meta, indent=2, ensure_ascii=False).encode() + b"\n",
        REPORT_FILE: json.dumps(report, indent=2).encode() + b"\n",
        LOSS_PLOT: plots.loss_plot(
            {config.model: (trained.history.loss, trained.history.accuracy)},
            f"{config.model} on {', '.join(s.name for s in songs)}",
        ),
        **prediction_files(songs, predictions, vocab),
    }
    with atomic_directory(path) as tmp:
        trained.model.save(tmp / MODEL_FILE)
        _normalize_keras_file(tmp / MODEL_FILE)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return report


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"melodygen": __version__, "python": platform.python_version()}
    for package in ("keras", "tensorflow", "tensorflow-cpu", "numpy"):
        with contextlib.suppress(PackageNotFoundError):
            out[package] = version(package)
    return out


def record_latest(path: Path) -> None:
    OUTPUTS.mkdir(exist_ok=True)
    write_atomic(LATEST, f"{path.resolve()}\n")


def latest() -> Path:
    if not LATEST.is_file():
        raise MelodygenError(
            "no trained model found: train one with 'melodygen train SONG' or pass --model DIR"
        )
    return Path(LATEST.read_text(encoding="utf-8").strip())


@dataclass(frozen=True)
class LoadedModel:
    path: Path
    spec: ModelSpec
    window: int
    vocab: encoding.Vocabulary
    forward: Forward
    songs: list[Song]
    meta: dict

    @property
    def table(self) -> np.ndarray:
        return encoding.input_table(self.vocab, self.spec.inputs)


def load_model(path: str | os.PathLike[str] | None = None) -> LoadedModel:
    """Load a model directory (default: the latest trained) for numpy inference."""
    path = Path(path) if path is not None else latest()
    if not path.is_dir():
        raise MelodygenError(f"{path}: no such model directory (train one with 'melodygen train')")
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise MelodygenError(f"{path}: not a model directory ({META_FILE} is missing)")
    try:
        meta = json.loads(read_bytes(meta_path))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MelodygenError(f"{meta_path}: not valid JSON ({e})") from None
    spec = SPECS[meta["model"]]
    vocab = encoding.Vocabulary(tuple(meta["vocabulary"]))
    with np.load(io.BytesIO(read_bytes(path / meta["weights"])), allow_pickle=False) as npz:
        weights = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    songs = [
        Song(
            tuple(parse_token(t) for t in s["tokens"]),
            name=s["name"],
            title=s["title"],
            tempo=s["tempo"],
            time=tuple(s["time"]) if s["time"] else None,
            program=s["program"],
        )
        for s in meta["songs"]
    ]
    return LoadedModel(path, spec, meta["window"], vocab, Forward(spec, weights), songs, meta)
