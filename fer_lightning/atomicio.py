"""Atomic file writes: a temp file beside the target, renamed over it only once complete. Every file the package
writes for others to read goes through here, so a crash or SIGKILL never leaves a half-written file (torch-free)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """An open handle on a new temp file beside `path`, flushed to disk and renamed over `path` if the block
    succeeds, removed if it fails. Errors name `path`, never the temp file: a directory in the way, a full disk."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; expected a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    try:
        # "x": create a new file, with the mode a plain open() gives (tempfile's 0600 would hide results from others)
        with open(tmp, mode.replace("w", "x")) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        full = OSError(f"{path}: no space left on {path.parent}; nothing was written (free some space)")
        full.errno = errno.ENOSPC
        raise full from error
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)
