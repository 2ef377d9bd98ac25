"""An interrupted run's epochs, kept beside the model it will write, so `train --resume`
continues it: ``DIR.partial/checkpoint.npz`` holds every variable of the model and of its
optimizer (dropout's random streams included: Keras keeps them as variables), the best weights
so far, and the epoch loop's state (training.EpochLoop.fit), with what the run is (its kind,
settings, seed and songs) to check a resume against.

One file, replaced atomically (files.write_atomic): a kill at any moment leaves the previous
checkpoint whole. numpy alone reads it, so a mismatch is found before TensorFlow loads.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from melodygen.errors import BadInput
from melodygen.files import write_atomic
from melodygen.notation import Song

SUFFIX = ".partial"  # DIR.partial/ beside DIR, the model directory
FILE = "checkpoint.npz"


def directory_for(out: Path) -> Path:
    return out.with_name(out.name + SUFFIX)


def kept(epochs: int, directory: Path) -> str:
    """How a message says where an interrupted run's epochs are."""
    return f"{epochs} epoch{'s are' if epochs != 1 else ' is'} kept in {directory}"


def songs_digest(songs: Sequence[Song]) -> str:
    """The songs as a run reads them (names, headers and tokens, in order), in 16 hex digits."""
    h = hashlib.sha256()
    for song in songs:
        header = (song.name, song.tempo, song.time, song.program, song.key)
        h.update(json.dumps([header, song.tokens]).encode() + b"\n")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """Where a run keeps its epochs and what it is. ``identity``: JSON-able facts that must be
    the same for a checkpoint to be continued (``"settings"``: the spec's, by name); ``resume``:
    continue from the checkpoint there (else start again, replacing it); ``writes``: False for a
    worker of a cluster other than the chief, which reads but never writes."""

    directory: Path
    identity: Mapping[str, Any]
    resume: bool = False
    writes: bool = True

    @property
    def path(self) -> Path:
        return self.directory / FILE

    def epochs_done(self) -> int | None:
        """The epochs the checkpoint there holds; None if there is none."""
        found = self.found()
        return None if found is None else found[0]

    def found(self) -> tuple[int, str | None] | None:
        """The checkpoint there: its epochs, and the first way it is not of this run (None: it
        is); None if there is none. BadInput if it cannot be read."""
        saved = self._read(arrays=False)
        if saved is None:
            return None
        for what, was, now in _differences(saved[0]["identity"], dict(self.identity)):
            return len(saved[0]["loop"]["history"]["loss"]), f"{what} {was}, not {now}"
        return len(saved[0]["loop"]["history"]["loss"]), None

    def resumable(self) -> int | None:
        """The epochs a --resume of this run would continue from; None if it would not."""
        try:
            found = self.found()
        except BadInput:
            return None
        return found[0] if found and found[1] is None else None

    def check(self) -> int:
        """With ``resume``: the epochs to continue from, after checking that the checkpoint is
        of this run (BadInput naming the first thing that differs, or that there is none)."""
        found = self.found()
        if found is None:
            raise BadInput(f"{self.directory}: no checkpoint to resume from", "resume")
        if found[1] is not None:
            raise BadInput(
                f"{self.directory}: the checkpoint was trained with {found[1]}: pass the same "
                "songs and options to --resume, or leave --resume out to start again",
                "resume",
            )
        return found[0]

    def load(self) -> tuple[dict, list[np.ndarray]] | None:
        """The loop's state and the arrays saved with it, if there is a checkpoint."""
        saved = self._read(arrays=True)
        return None if saved is None else (saved[0]["loop"], saved[1])

    def save(self, loop: Mapping[str, Any], arrays: Sequence[np.ndarray]) -> None:
        if not self.writes:
            return
        buffer = io.BytesIO()
        state = json.dumps({"identity": dict(self.identity), "loop": dict(loop)}).encode()
        named = {f"a{i}": np.asarray(a) for i, a in enumerate(arrays)}
        np.savez(buffer, state=np.frombuffer(state, np.uint8), **named)
        write_atomic(self.path, buffer.getvalue())

    def remove(self) -> None:
        if self.writes:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _read(self, arrays: bool) -> tuple[dict, list[np.ndarray]] | None:
        if not self.path.is_file():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                state = json.loads(npz["state"].tobytes())
                len(state["loop"]["history"]["loss"]), dict(state["identity"])  # its shape
                count = len(npz.files) - 1
                return state, [npz[f"a{i}"] for i in range(count)] if arrays else []
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
            raise BadInput(f"{self.path}: not a readable checkpoint ({e}): remove it") from None


def _differences(saved: Mapping[str, Any], now: Mapping[str, Any]):
    """(what, the checkpoint's, this run's) for each fact that differs, settings by flag."""
    for key in sorted(set(saved) | set(now)):
        was, is_ = saved.get(key), now.get(key)
        if key == "settings":
            for name in sorted(set(was or {}) | set(is_ or {})):
                a, b = (was or {}).get(name), (is_ or {}).get(name)
                if a != b:
                    yield "--" + name.replace("_", "-"), _shown(a), _shown(b)
        elif was != is_:
            yield key, _shown(was), _shown(is_)


def _shown(value: Any) -> str:
    if value is None:
        return "the default"
    if isinstance(value, list):
        return "..".join(map(str, value)) if len(value) == 2 else str(value)
    return str(value)
