"""Durable file writes: temp file + fsync + rename, so a reader sees the old file or the new one, never half."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

# Every temporary file the store writes starts with "." and contains this marker, so a writer that
# starts after a crash can recognise and delete them without touching anything else.
TMP_MARKER = ".tmp-"


def temp_path(final: Path) -> Path:
    """A temp name beside ``final`` (same directory, so the rename is atomic on POSIX)."""
    return final.with_name(f".{final.name}{TMP_MARKER}{os.getpid()}")


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and TMP_MARKER in name


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename/unlink inside ``path`` durable (the directory entry itself must reach disk)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` atomically and durably."""
    tmp = temp_path(final)
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


def atomic_write_with(final: Path, write: Callable[[str], None]) -> None:
    """Like ``atomic_write_bytes`` for writers that insist on a file name (``faiss.write_index``)."""
    tmp = temp_path(final)
    write(str(tmp))
    fsync_file(tmp)
    os.replace(tmp, final)
    fsync_dir(final.parent)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()
