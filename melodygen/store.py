"""The model directory (docs/cli.md): written whole or not at all, loaded without TensorFlow.

``melodygen.json`` is a typed record (``Metadata``) written and read by the same code, its
settings a kind's spec saved and checked generically; ``report.json`` is the training
``Report``; ``weights.npz`` holds the weights for the numpy forward pass, so composing and
evaluating never import TensorFlow. A compact directory (the built-in models under
melodygen/models/, shipped in the package) holds its weights as float16 and its training songs
as token ids (songs.npz). The caller hands over every other file (report, pictures,
predictions) as bytes. Loading treats the directory as untrusted: JSON and numpy arrays only
(never pickle), checked against the schema and the checksums before use.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import itertools
import json
import math
import os
import platform
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from melodygen import __version__, kinds
from melodygen.corpus import Skipped
from melodygen.encoding import Vocabulary
from melodygen.errors import BadInput
from melodygen.evaluation import Measures, Reference, finite
from melodygen.files import atomic_directory, deterministic_zip, read_bytes, write_atomic
from melodygen.kinds import KINDS, Kind, Model, Spec
from melodygen.notation import HEADER_KEYS, Song, parse_token

MODEL_FILE = "model.keras"
WEIGHTS_FILE = "weights.npz"
META_FILE = "melodygen.json"
REPORT_FILE = "report.json"
LOSS_PLOT = "loss.png"
FORMAT = "melodygen-model/2"  # the settings in "spec"
FIRST_FORMAT = "melodygen-model/1"  # the sizes at the top level; still loaded
SONGS_FILE = "songs.npz"  # a compact directory's training songs: token ids, songs' lengths
CHECKED = (MODEL_FILE, WEIGHTS_FILE, SONGS_FILE)  # files whose checksums melodygen.json holds
BUILT_IN = Path(__file__).parent / "models"  # the models shipped in the package, by name
STATE_ENV = "MELODYGEN_STATE"  # overrides the per-user state directory (for tests, CI)
LATEST_FILE = "latest-model"  # in the state directory: the path of the model trained last


def weights_to_npz(weights: Sequence[np.ndarray], floats: type = np.float32) -> bytes:
    """np.savez's layout (arr_0.npy, ...) with fixed zip times: loadable by np.load. Floats are
    stored as ``floats``, integers (an n-gram's tables) as int32."""
    entries = []
    for i, w in enumerate(weights):
        buf = io.BytesIO()
        dtype = np.int32 if np.asarray(w).dtype.kind in "iu" else floats
        np.lib.format.write_array(buf, np.ascontiguousarray(w, dtype=dtype), allow_pickle=False)
        entries.append((f"arr_{i}.npy", buf.getvalue()))
    return deterministic_zip(entries)


def _read_npz(data: bytes) -> list[np.ndarray]:
    """ValueError unless ``data`` is an npz of arrays arr_0, arr_1, ... (never pickles)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return [npz[f"arr_{i}"] for i in range(len(npz.files))]
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(str(e)) from None


def songs_to_npz(songs: Sequence[Song], vocab: Vocabulary) -> bytes:
    """The songs' tokens as ids into ``vocab``, one run, and each song's length."""
    ids = [vocab.get(t) for song in songs for t in song.tokens]
    lengths = [len(song.notes) for song in songs]
    return weights_to_npz([np.array(ids, np.int32), np.array(lengths, np.int32)])


def _with_tokens(meta: dict, data: bytes) -> list[np.ndarray]:
    """Put a compact directory's song tokens (songs.npz) into its melodygen.json's songs;
    returns each song's token ids."""
    try:
        arrays = _read_npz(data)
    except ValueError as e:
        raise ValueError(f"{SONGS_FILE} is not a numpy arrays file ({e})") from None
    vocab, songs = meta.get("vocabulary"), meta.get("songs")
    if len(arrays) != 2 or not isinstance(vocab, list) or not isinstance(songs, list):
        raise ValueError(f"{SONGS_FILE} must hold token ids and song lengths")
    ids, lengths = arrays
    if ids.dtype.kind not in "iu" or lengths.dtype.kind not in "iu":
        raise ValueError(f"{SONGS_FILE} must hold whole numbers")
    if len(lengths) != len(songs) or lengths.min(initial=0) < 0 or lengths.sum() != len(ids):
        raise ValueError(f"{SONGS_FILE}'s lengths do not fit its songs")
    if ids.size and (ids.min() < 0 or ids.max() >= len(vocab)):
        raise ValueError(f"{SONGS_FILE} names tokens outside the vocabulary")
    tokens = np.array(vocab, dtype=object)
    parts = np.split(ids.astype(np.int64), np.cumsum(lengths)[:-1])
    for song, part in zip(songs, parts, strict=True):
        if isinstance(song, dict):
            song["tokens"] = list(tokens[part])
    return parts


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def song_to_json(song: Song) -> dict:
    return {
        "name": song.name,
        "title": song.title,
        "tempo": song.tempo,
        "time": list(song.time) if song.time else None,
        "program": song.program,
        "tokens": " ".join(song.tokens),  # one line: a corpus's songs in a few MB, not tens
    }


def song_from_json(data: object) -> Song:
    """ValueError naming what is wrong; Song checks its own header values. The tokens are one
    string, or a list of strings as older model directories have them."""
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), (str, list)):
        raise ValueError("each song needs its tokens")
    tokens = data["tokens"]
    tokens = tokens.split() if isinstance(tokens, str) else tokens
    name = data.get("name")
    header = {k: data.get(k) for k in HEADER_KEYS}
    if isinstance(header["time"], list):
        header["time"] = tuple(header["time"])
    if isinstance(header["tempo"], int) and not isinstance(header["tempo"], bool):
        header["tempo"] = float(header["tempo"])
    try:
        if not all(map(isinstance, tokens, itertools.repeat(str))):
            raise ValueError("tokens must be strings")
        notes = tuple(map(parse_token, tokens))
        return Song(notes, name=name, **header)  # type: ignore[arg-type]
    except ValueError as e:  # TokenError is a ValueError
        raise ValueError(f"song {name!r:.40}: {e}") from None


def versions() -> dict[str, str]:
    out = {"melodygen": __version__, "python": platform.python_version()}
    for package in ("keras", "tensorflow", "tensorflow-cpu", "numpy"):
        with contextlib.suppress(PackageNotFoundError):
            out[package] = version(package)
    return out


@dataclass(frozen=True)
class Metadata:
    """melodygen.json: everything needed to use the model without its songs."""

    kind: Kind
    spec: Spec  # the kind's settings
    vocabulary: tuple[str, ...]
    songs: tuple[Song, ...]  # the training songs
    seed: int
    valid: float = 0.0  # the held-out fraction (corpus.split)
    held_out: tuple[str, ...] = ()  # the file names of the held-out songs
    versions: Mapping[str, str] = field(default_factory=versions)
    files: Mapping[str, str] = field(default_factory=dict)  # name -> SHA-256 of CHECKED files
    base: str | None = None  # the model it was fine-tuned from (train --from), if any
    reference: Reference | None = None  # the training songs' figures (None: not saved)

    def to_json(self, compact: bool = False) -> dict:
        """``compact``: the songs without their tokens (songs.npz has them)."""
        songs = [song_to_json(s) for s in self.songs]
        for song in songs if compact else ():
            del song["tokens"]
        return {
            "format": FORMAT,
            "model": self.kind.name,
            "spec": self.spec.to_json(),
            "vocabulary": list(self.vocabulary),
            "encoding": self.kind.describe(self.spec, Vocabulary(self.vocabulary)),
            "songs": songs,
            **({"songs_file": SONGS_FILE} if compact else {}),
            **({"base": self.base} if self.base is not None else {}),
            **({"reference": self.reference.to_json()} if self.reference else {}),
            "valid": self.valid,
            "held_out": list(self.held_out),
            "seed": self.seed,
            "versions": dict(self.versions),
            "files": dict(self.files),
        }

    @classmethod
    def from_json(cls, meta: object) -> Metadata:
        """The shape melodygen.json must have; ValueError saying what is wrong otherwise. A
        directory of the first format has its settings at the top level."""
        if not isinstance(meta, dict):
            raise ValueError("expected a JSON object")
        if meta.get("format") not in (FORMAT, FIRST_FORMAT):
            raise ValueError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
        expected = {"model": str, "vocabulary": list, "songs": list, "files": dict, "seed": int,
                    "valid": (int, float), "held_out": list}  # fmt: skip
        if meta["format"] == FORMAT:
            expected["spec"] = dict
        for key, kind in expected.items():
            if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
                name = kind.__name__ if isinstance(kind, type) else "number"
                raise ValueError(f"{key!r} must be a {name}, not {meta.get(key)!r:.60}")
        if meta["model"] not in KINDS:
            known = ", ".join(KINDS)
            raise ValueError(f"unknown model {meta['model']!r} (expected one of {known})")
        kind = KINDS[meta["model"]]
        if meta["format"] == FORMAT:
            settings = meta["spec"]
        else:
            settings = {s.name: meta[s.name] for s in kind.spec.settings() if s.name in meta}
        spec = kind.spec.from_json(settings)
        vocab = Vocabulary(tuple(map(str, meta["vocabulary"])))
        if vocab.tokens != tuple(meta["vocabulary"]):
            raise ValueError("vocabulary entries must be strings")
        vocab.check()
        if vocab.specials != kind.specials:
            raise ValueError(
                f"a {kind.name} model's vocabulary ends with {', '.join(kind.specials)}"
            )
        songs = tuple(song_from_json(s) for s in meta["songs"])
        known = set(vocab.tokens)
        for song in songs:
            if not known.issuperset(song.tokens):
                raise ValueError(f"song {song.name!r} uses tokens outside the vocabulary")
        if not all(isinstance(v, str) for v in (*meta["files"].values(), *meta["held_out"])):
            raise ValueError("'files' must map names to checksums, 'held_out' list names")
        return cls(
            kind=kind,
            spec=spec,
            vocabulary=vocab.tokens,
            songs=songs,
            seed=meta["seed"],
            valid=float(meta["valid"]),
            held_out=tuple(meta["held_out"]),
            versions=meta.get("versions") if isinstance(meta.get("versions"), dict) else {},
            files=meta["files"],
            base=meta["base"] if isinstance(meta.get("base"), str) else None,
            reference=Reference.from_json(meta["reference"]) if "reference" in meta else None,
        )


def save(
    path: Path, meta: Metadata, model: Model, files: Mapping[str, bytes], compact: bool = False
) -> None:
    """Write the model directory whole: the weights, melodygen.json with the checksums of the
    weights and of ``files[MODEL_FILE]``, and every other file as given. ``compact`` (a
    built-in model): float16 weights, the songs as token ids, melodygen.json on few lines."""
    floats = np.float16 if compact else np.float32
    files = {WEIGHTS_FILE: weights_to_npz(model.weights, floats), **files}
    if compact:
        files[SONGS_FILE] = songs_to_npz(meta.songs, model.vocab)
    checksums = {name: _sha256(files[name]) for name in CHECKED if name in files}
    meta = Metadata(**{**meta.__dict__, "files": checksums})
    text = json.dumps(meta.to_json(compact), indent=None if compact else 2, ensure_ascii=False)
    files[META_FILE] = text.encode() + b"\n"
    with atomic_directory(path) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)


def state_dir() -> Path:
    """Per-user state (XDG): where the latest model is recorded, whatever the working
    directory."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "melodygen"


def record_latest(path: Path) -> None:
    state = state_dir()
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"{state}: cannot record the latest model: {e.strerror or e}") from None
    write_atomic(state / LATEST_FILE, f"{path.resolve()}\n")


def latest() -> Path | None:
    """The model trained last, or None if none has been."""
    file = state_dir() / LATEST_FILE
    if not file.is_file():
        return None
    return Path(file.read_text(encoding="utf-8").strip())


def built_in() -> list[str]:
    """The names of the models shipped in the package (``--model essen``)."""
    found = BUILT_IN.iterdir() if BUILT_IN.is_dir() else ()
    return sorted(p.name for p in found if (p / META_FILE).is_file())


DEFAULT_BUILT_IN = kinds.BUILT_IN_BASE  # what compose uses when nothing has been trained


def resolve(model: str | os.PathLike[str] | None) -> tuple[Path, str | None]:
    """(the model directory, the built-in model's name or None) that ``--model`` names: a
    built-in model's name (a bare word, which a directory of that name in the working
    directory would make ambiguous: then it is refused), else a directory; None: the latest
    trained, else the built-in DEFAULT_BUILT_IN."""
    if model is None:
        found = latest()
        if found is None:
            return BUILT_IN / DEFAULT_BUILT_IN, DEFAULT_BUILT_IN
        return found, None
    text = os.fspath(model)
    if text in built_in():
        if Path(text).exists():
            raise BadInput(
                f"{text!r} is both a built-in model and a directory here: write ./{text} for "
                "the directory",
                "model",
            )
        return BUILT_IN / text, text
    return Path(text), None


@dataclass(frozen=True)
class Loaded:
    path: Path
    meta: Metadata
    model: Model
    built_in: str | None = None  # the built-in model's name, if it is one
    latest: bool = False  # loaded as the latest trained model (none was named)
    ids: Sequence[np.ndarray] | None = field(default=None, repr=False)  # songs.npz's, per song

    @functools.cached_property
    def song_ids(self) -> list[np.ndarray]:
        """The training songs as indices into the model's vocabulary: a compact directory's
        songs.npz holds them (reading them back is most of what loading its songs costs)."""
        if self.ids is not None:
            return list(self.ids)
        return [np.array(self.model.vocab.encode(s.tokens), np.int64) for s in self.meta.songs]

    @functools.cached_property
    def reference(self) -> Reference:
        """The training songs' figures, as saved (computed for a model saved without them)."""
        return self.meta.reference or Reference.of(self.meta.songs)

    @property
    def name(self) -> str:
        """How a user names it: the built-in model's name, else its directory."""
        return self.built_in or str(self.path)


def _bad(path: Path, what: str) -> BadInput:
    return BadInput(f"{path}: not a usable melodygen model: {what}")


def _read_checked(path: Path, name: str, digests: Mapping[str, str]) -> bytes:
    file = path / name
    if not file.is_file():
        raise _bad(path, f"{name} is missing")
    data = read_bytes(file)
    if digests.get(name) != _sha256(data):
        raise _bad(
            path, f"{name} does not match the checksum in {META_FILE} (truncated or changed)"
        )
    return data


def load(model: str | os.PathLike[str] | None = None) -> Loaded:
    """Load a model (a directory or a built-in model's name; default: the latest trained,
    else the built-in one) for numpy inference.

    Nothing in the directory is executed: JSON and numpy arrays only (no pickle), both checked
    against the metadata's schema and checksums before use.
    """
    asked_latest = model is None
    path, name = resolve(model)
    if not path.is_dir():
        known = ", ".join(built_in())
        raise BadInput(
            f"{path}: no such model directory (train one with 'melodygen train', or use a "
            f"built-in model: {known})"
        )
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise BadInput(f"{path}: not a model directory ({META_FILE} is missing)")
    ids = None
    try:
        raw = json.loads(read_bytes(meta_path))
        if isinstance(raw, dict) and raw.get("songs_file") == SONGS_FILE:
            digests = raw["files"] if isinstance(raw.get("files"), dict) else {}
            ids = _with_tokens(raw, _read_checked(path, SONGS_FILE, digests))
        meta = Metadata.from_json(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _bad(path, f"{META_FILE} is not valid JSON ({e})") from None
    except ValueError as e:
        raise _bad(path, str(e)) from None
    if MODEL_FILE in meta.files:  # not used here, but a directory is checked whole
        _read_checked(path, MODEL_FILE, meta.files)
    data = _read_checked(path, WEIGHTS_FILE, meta.files)
    try:
        weights = _read_npz(data)
    except ValueError as e:
        raise _bad(path, f"{WEIGHTS_FILE} is not a numpy weights file ({e})") from None
    try:
        meta.kind.check_weights(weights, meta.spec, len(meta.vocabulary))
    except ValueError as e:
        raise _bad(path, str(e)) from None
    model = Model(meta.kind, meta.spec, Vocabulary(meta.vocabulary), tuple(weights))
    return Loaded(path, meta, model, name, asked_latest, ids)


@dataclass(frozen=True)
class Report:
    """What training did and how well the model fits its songs: report.json's contents."""

    model: str  # the kind's name
    spec: Spec  # its settings
    songs: list[str]  # the training songs' names
    epochs_run: int
    perfect_at: int | None
    train_seconds: float
    seed: int
    training: Measures
    validation: Measures | None = None  # on the held-out songs, if any
    best_epoch: int | None = None  # the epoch whose weights were kept (best validation loss)
    # per epoch: loss and accuracy as the weights changed; valid_loss, valid_accuracy,
    # valid_bits and valid_pitch_bits on the held-out songs after the epoch; epoch_seconds
    history: Mapping[str, list[float]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)  # songs in directories not used
    held_out: list[str] = field(default_factory=list)  # the held-out songs' names
    seconds_per_epoch: float = math.nan  # compiling excluded
    meters: Mapping[str, int] = field(default_factory=dict)  # "3/4" -> songs, all of them
    untimed: int = 0  # songs without a time signature, taken as 4/4
    base: str | None = None  # the model it was fine-tuned from (train --from), if any
    peak_memory_mb: float | None = None  # the training process's peak resident memory

    @property
    def final_loss(self) -> float | None:
        return self.history["loss"][-1] if self.history.get("loss") else None

    @property
    def tokens_per_second(self) -> float:
        """Training tokens (predicted tokens of the training songs) read per second of an
        epoch, compiling excluded."""
        return self.training.predictions / self.seconds_per_epoch

    def to_json(self) -> dict:
        t = self.training
        return {
            "model": self.model,
            "songs": self.songs,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "perfect_at": self.perfect_at,
            "train_seconds": round(self.train_seconds, 3),
            "seconds_per_epoch": finite(self.seconds_per_epoch),
            "tokens_per_second": finite(self.tokens_per_second),
            "final_loss": self.final_loss,
            "accuracy": t.accuracy,
            "predictions": t.predictions,
            "one_step_correct": t.one_step_correct,
            "full_song_correct": t.full_song_correct,
            "full_song_reproduced": t.full_song_reproduced,
            "seed": self.seed,
            "spec": self.spec.to_json(),
            "measures": {
                "training": t.to_json(),
                "validation": self.validation.to_json() if self.validation else None,
            },
            "held_out": self.held_out,
            "meters": dict(self.meters),
            "untimed": self.untimed,
            "base": self.base,
            "peak_memory_mb": self.peak_memory_mb,
            "skipped": [{"file": s.path, "reason": s.reason} for s in self.skipped],
            "history": {k: [finite(v) for v in vs] for k, vs in self.history.items()},
        }


def save_compact(source: Loaded, path: Path) -> None:
    """A model directory as a built-in model is shipped (save's ``compact``): its report and
    loss curve kept, its Keras file (which only training reads) left out."""
    files = {name: read_bytes(source.path / name) for name in (REPORT_FILE, LOSS_PLOT)
             if (source.path / name).is_file()}  # fmt: skip
    meta = Metadata(**{**source.meta.__dict__, "reference": source.reference})
    save(path, meta, source.model, files, compact=True)
