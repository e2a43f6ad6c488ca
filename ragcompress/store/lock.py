"""The single-writer lock: ``fcntl.flock`` on ``writer.lock`` inside the store directory.

flock is tied to the open file description, so the kernel drops it the moment the holder exits,
however it exits (SIGKILL included): a lock left by a dead process never blocks the next writer.
The file itself is never deleted (deleting a lock file races with a process that just opened it);
the pid written into it is only for the error message.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from ragcompress.store.errors import StoreLockedError

LOCK_NAME = "writer.lock"


class WriterLock:
    """An exclusive, non-blocking, cross-process lock on one store directory."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown process"
            os.close(fd)
            raise StoreLockedError(
                f"{self.path.parent} is being written by another process ({holder}); "
                "wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # Closing the descriptor releases the flock; the stale pid text is harmless.
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
