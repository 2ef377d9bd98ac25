"""The model directory (CLI.md): writing it whole or not at all, and loading it without TensorFlow.

``weights.npz`` beside ``model.keras`` holds the same weights for the numpy forward pass, so
composing and evaluating never import TensorFlow. Everything a file depends on is fixed by the
seed, so retraining with the same seed gives the same bytes (``report.json``'s timings aside).
"""

from __future__ import annotations

import contextlib
import hashlib
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
from melodygen.notation import (
    Note,
    Song,
    TokenError,
    format_song,
    header_value,
    parse_token,
)

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


def _normalized_keras(data: bytes) -> bytes:
    """Drop what makes equal models differ in bytes: the save date, memory addresses used as
    shared-object ids, and zip entry times. Keras loads the result as before."""
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
    return _deterministic_zip(fixed)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
        "versions": versions(),
    }
    files = {
        WEIGHTS_FILE: weights_to_npz(weights),
        REPORT_FILE: json.dumps(report, indent=2).encode() + b"\n",
        LOSS_PLOT: plots.loss_plot(
            {config.model: (trained.history.loss, trained.history.accuracy)},
            f"{config.model} on {', '.join(s.name for s in songs)}",
        ),
        **prediction_files(songs, predictions, vocab),
    }
    with atomic_directory(path) as tmp:
        trained.model.save(tmp / MODEL_FILE)
        files[MODEL_FILE] = _normalized_keras((tmp / MODEL_FILE).read_bytes())
        # What loading checks: a truncated or edited model file is refused, not half-read.
        meta["files"] = {name: _sha256(files[name]) for name in (MODEL_FILE, WEIGHTS_FILE)}
        files[META_FILE] = json.dumps(meta, indent=2, ensure_ascii=False).encode() + b"\n"
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

    @property
    def table(self) -> np.ndarray:
        return encoding.input_table(self.vocab, self.spec.inputs)


def _bad(path: Path, what: str) -> MelodygenError:
    return MelodygenError(f"{path}: not a usable melodygen model: {what}")


def _check_meta(meta: object, path: Path) -> dict:
    """The shape melodygen.json must have; anything else is refused with what is wrong."""
    if not isinstance(meta, dict):
        raise _bad(path, "expected a JSON object")
    if meta.get("format") != FORMAT:
        raise _bad(path, f"format is {meta.get('format')!r}, expected {FORMAT!r}")
    expected = {"model": str, "window": int, "units": int, "inputs": str, "vocabulary": list,
                "songs": list, "files": dict}  # fmt: skip
    for key, kind in expected.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise _bad(path, f"{key!r} must be a {kind.__name__}, not {meta.get(key)!r:.60}")
    if meta["model"] not in SPECS:
        raise _bad(path, f"unknown model {meta['model']!r} (expected one of {', '.join(SPECS)})")
    if meta["inputs"] != SPECS[meta["model"]].inputs:
        raise _bad(path, f"inputs {meta['inputs']!r} do not fit a {meta['model']} model")
    if not 1 <= meta["window"] <= 256 or not 1 <= meta["units"] <= 4096:
        raise _bad(path, "window or units out of range")
    vocab = meta["vocabulary"]
    if not vocab or len(set(map(str, vocab))) != len(vocab):
        raise _bad(path, "the vocabulary must be non-empty, without repeats")
    for token in vocab:
        try:
            if not isinstance(token, str) or parse_token(token).token != token:
                raise TokenError("not a canonical token")
        except TokenError:
            raise _bad(path, f"vocabulary entry {token!r} is not a token") from None
    for song in meta["songs"]:
        if not isinstance(song, dict) or not isinstance(song.get("tokens"), list):
            raise _bad(path, "each song needs its tokens")
        if not set(map(str, song["tokens"])) <= set(vocab):
            raise _bad(path, f"song {song.get('name')!r} uses tokens outside the vocabulary")
    return meta


def _read_checked(path: Path, name: str, digests: dict) -> bytes:
    file = path / name
    if not file.is_file():
        raise _bad(path, f"{name} is missing")
    data = read_bytes(file)
    if digests.get(name) != _sha256(data):
        raise _bad(
            path, f"{name} does not match the checksum in {META_FILE} (truncated or changed)"
        )
    return data


def _check_weights(weights: list[np.ndarray], spec: ModelSpec, meta: dict, path: Path) -> None:
    u, v, w, f = meta["units"], len(meta["vocabulary"]), meta["window"], spec.features
    if spec.recurrent:
        shapes = [(f, 4 * u), (u, 4 * u), (4 * u,), (u, v), (v,)]
    else:
        shapes = [(w, u), (u,), (u, u), (u,), (u, v), (v,)]
    found = [tuple(a.shape) for a in weights]
    if found != shapes:
        raise _bad(path, f"weight shapes {found} do not fit a {spec.name} model of {u} units, "
                   f"window {w} and {v} tokens (expected {shapes})")  # fmt: skip
    if not all(a.dtype.kind == "f" and np.isfinite(a).all() for a in weights):
        raise _bad(path, "weights must be finite floating-point numbers")


def _song_from_meta(s: dict, path: Path) -> Song:
    """A training song back from melodygen.json, its header checked as a song file's would be."""
    header = {}
    for key in ("title", "tempo", "time", "program"):
        value = s.get(key)
        if value is None:
            continue
        text = "/".join(map(str, value)) if key == "time" and isinstance(value, list) else value
        if key != "title" and isinstance(text, float) and text.is_integer():
            text = int(text)
        try:
            if not isinstance(text, (str, int, float)) or isinstance(text, bool):
                raise ValueError(f"{key} has the wrong type")
            header[key] = header_value(key, str(text))
        except ValueError as e:
            raise _bad(path, f"song {s.get('name')!r}: {e}") from None
    name = s.get("name")
    return Song(tuple(parse_token(t) for t in s["tokens"]), name=str(name), **header)


def load_model(path: str | os.PathLike[str] | None = None) -> LoadedModel:
    """Load a model directory (default: the latest trained) for numpy inference.

    Nothing in the directory is executed: JSON and numpy arrays only (no pickle), both checked
    against the metadata's schema and checksums before use.
    """
    path = Path(path) if path is not None else latest()
    if not path.is_dir():
        raise MelodygenError(f"{path}: no such model directory (train one with 'melodygen train')")
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise MelodygenError(f"{path}: not a model directory ({META_FILE} is missing)")
    try:
        meta = _check_meta(json.loads(read_bytes(meta_path)), path)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _bad(path, f"{META_FILE} is not valid JSON ({e})") from None
    spec = SPECS[meta["model"]]
    _read_checked(path, MODEL_FILE, meta["files"])
    data = _read_checked(path, WEIGHTS_FILE, meta["files"])
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            weights = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise _bad(path, f"{WEIGHTS_FILE} is not a numpy weights file ({e})") from None
    _check_weights(weights, spec, meta, path)
    songs = [_song_from_meta(s, path) for s in meta["songs"]]
    vocab = encoding.Vocabulary(tuple(meta["vocabulary"]))
    return LoadedModel(path, spec, meta["window"], vocab, Forward(spec, weights), songs)
