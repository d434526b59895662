"""What every step shares: opening a part by name, the chunk size, the error, flushing a folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import IO

# Bytes read or copied at a time for files and spooled records.
CHUNK = 1024 * 1024


# Opens a part's (or a part's file's) name as a binary stream read from the start.
Opener = Callable[[PurePath], IO[bytes]]


def open_local(path: PurePath) -> IO[bytes]:
    return Path(path).open("rb")


class PackageError(Exception):
    """A part or package could not be written or read (disk full, a part missing or damaged)."""


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
