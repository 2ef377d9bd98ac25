"""Reading inputs and writing outputs atomically: a crash never leaves half a file behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from melodygen.errors import MelodygenError


def read_bytes(path: str | os.PathLike[str], what: str = "file") -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MelodygenError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise MelodygenError(f"{path}: is a directory, expected a {what}") from None
    except OSError as e:
        raise MelodygenError(f"{path}: cannot read: {e.strerror or e}") from None


def _check_parent(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise MelodygenError(f"{path}: cannot write: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise MelodygenError(f"{path}: cannot write: directory {parent} is not writable")
    if path.is_dir():
        raise MelodygenError(f"{path}: cannot write: it is a directory")


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write to a temporary name beside ``path`` and rename it into place.

    The rename is atomic on POSIX, so readers see the old file or the new one, never a mix,
    and an interrupted write leaves the old file untouched.
    """
    path = Path(path)
    _check_parent(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise MelodygenError(f"{path}: cannot write: {e.strerror or e}", 1) from None
        raise
    return path


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` only if the block succeeds.

    A directory is complete or absent: on any error or Ctrl-C the temporary one is removed
    and whatever was at ``path`` before is still there.
    """
    path = Path(path)
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MelodygenError(f"{path}: cannot create: {e.strerror or e}") from None
    if path.exists() and not path.is_dir():
        raise MelodygenError(f"{path}: exists and is not a directory")
    if not os.access(parent, os.W_OK):
        raise MelodygenError(f"{path}: cannot write: directory {parent} is not writable")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    os.chmod(tmp, 0o755)
    old = None
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.replace(old / path.name, path)  # interrupted between the two renames
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
