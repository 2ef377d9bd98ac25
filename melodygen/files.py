"""Reading inputs and writing outputs atomically: a crash never leaves half a file behind."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from melodygen.errors import BadInput, MelodygenError, SystemFailure

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # zip entry times, so equal contents give equal bytes

# Errors that mean "this path cannot be written" (bad input, exit 2), not "the disk failed" (1).
_PATH_ERRORS = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR,
    errno.ENAMETOOLONG, errno.ELOOP,
}  # fmt: skip


def read_bytes(path: str | os.PathLike[str], what: str = "file") -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, expected a {what}") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror or e}") from None


def _cannot_write(path: Path, e: OSError) -> MelodygenError:
    kind = BadInput if e.errno in _PATH_ERRORS else SystemFailure
    return kind(f"{path}: cannot write: {e.strerror or e}")


def _nearest_directory(path: Path, target: Path) -> Path:
    """``path`` or its nearest existing ancestor, which must be a directory: missing
    directories on the way to an output are created when it is written, as ``mkdir -p``."""
    while not path.exists() and path != path.parent:
        path = path.parent
    if not path.is_dir():
        raise BadInput(f"{target}: cannot write: {path} is not a directory")
    return path


def _writable_directory(path: Path, target: Path) -> None:
    path = _nearest_directory(path, target)
    try:  # os.access says yes to root everywhere; only trying tells the truth (/proc, /sys)
        os.rmdir(tempfile.mkdtemp(prefix=".melodygen-check.", dir=path))
    except OSError as e:
        raise _cannot_write(target, e) from None


def check_file_target(
    path: str | os.PathLike[str], overwrite: bool = True, writable: set[Path] | None = None
) -> None:
    """Fail now, before any work, if ``path`` could not be written (or exists and must not be
    overwritten). ``writable``: directories already tried (100 tunes are one directory), to
    which this one is added."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{path}: cannot write: it is a directory")
    if not overwrite and path.exists():
        raise BadInput(f"{path}: already exists (not overwritten)", parameter="force")
    if writable is None or path.parent not in writable:
        _writable_directory(path.parent, path)
    if writable is not None:
        writable.add(path.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write to a temporary name beside ``path`` and rename it into place.

    The rename is atomic on POSIX, so readers see the old file or the new one, never a mix,
    and an interrupted write leaves the old file untouched.
    """
    path = Path(path)
    _nearest_directory(path.parent, path)
    if path.is_dir():
        raise BadInput(f"{path}: cannot write: it is a directory")
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(e, OSError):
            raise _cannot_write(path, e) from None
        raise
    return path


def check_directory_target(path: Path) -> None:
    """Fail now, not after an hour of training, if ``path`` could not become a directory."""
    if path.exists() and not path.is_dir():
        raise BadInput(f"{path}: exists and is not a directory")
    _writable_directory(path.parent, path)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` only if the block succeeds.

    A directory is complete or absent: on any error or Ctrl-C the temporary one is removed
    and whatever was at ``path`` before is still there.
    """
    path = Path(path)
    check_directory_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(tmp, 0o755)
    except OSError as e:
        raise _cannot_write(path, e) from None
    old = None
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
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


def deterministic_zip(entries: Sequence[tuple[str, bytes]]) -> bytes:
    """A zip archive whose bytes depend on its entries only (fixed times, given order)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return out.getvalue()
