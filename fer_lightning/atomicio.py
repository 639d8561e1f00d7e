"""Atomic file writes: a temp file beside the target, renamed over it only once complete.

Every file the package writes for others to read (records, tables, figures, caches, checkpoints, exported
models, annotated images) goes through here, so a crash or SIGKILL never leaves a half-written file.
No torch import: the data readers use it too.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _default_mode() -> int:
    """What a plain open() would give (mkstemp makes 0600 files, which would hide results from other users)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside `path` for writers that take a file name; renamed over `path` if the block succeeds,
    removed if it fails. Errors name `path`, never the temp file: a directory in the way, a full disk."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; expected a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        full = OSError(f"{path}: no space left on {path.parent}; nothing was written (free some space)")
        full.errno = errno.ENOSPC
        raise full from error
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """An open handle on a temp file beside `path`, flushed to disk and renamed over `path` on success."""
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)
