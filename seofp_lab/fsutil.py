"""One place for files that several processes share: atomic writes and inter-process locks.

Every file the platform writes that another process (or a later run) reads goes through here:
a writer never leaves half a file under the final name (a temporary in the same folder, flushed,
then ``os.replace``), and a job that must run once per workspace (a test-set build, a score cache)
holds a :class:`filelock.FileLock` beside its output.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

__all__ = ["atomic_path", "write_bytes_atomic", "write_text_atomic", "lock_for"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], mode: int = 0o644) -> Iterator[Path]:
    """Yield a unique temporary path beside ``path``; on success it replaces ``path`` atomically.

    On any exception (Ctrl-C included) the temporary is removed and ``path`` keeps its old content.
    The temporary keeps the final suffix, so writers that pick a format by suffix still work.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:  # what the caller wrote reaches the disk before the rename
            os.fsync(f.fileno())
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never a part."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """UTF-8 text through :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def lock_for(path: str | os.PathLike[str], timeout: float = -1) -> FileLock:
    """An inter-process lock for ``path`` (the file ``<path>.lock`` beside it), a context manager.

    ``timeout=-1`` waits for as long as the holder needs; a positive timeout raises
    :class:`filelock.Timeout` after that many seconds.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=timeout)
