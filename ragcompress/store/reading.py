"""How a ``Store`` reads one committed generation while writers commit, and follows a rebuild.

A mixin of ``Store`` (it uses the store's metadata connection, FAISS index and shard readers); kept apart
so that store.py stays about opening, reading and writing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from ragcompress.store.errors import StoreCorruptError, StoreRebuiltError
from ragcompress.store.layout import readable_directory
from ragcompress.store.manifest import read_manifest
from ragcompress.store.meta import META_NAME, MetaDB

log = logging.getLogger("ragcompress.store.store")
T = TypeVar("T")


class ConsistentReads:
    """``snapshot()``, ``read_consistent()`` and rebuild detection, for ``Store``."""

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[int]:
        """Pin one committed generation (yielded) for every read in the block: searches, chunk lookups
        and vector reads all see that state, whatever a writer commits meanwhile. Nested uses share it.

        A SQLite read transaction pins the metadata (WAL keeps serving it to us while writers commit);
        the FAISS index is brought to that same generation on entry."""
        if self._pinned:
            yield self._generation
            return
        self._refresh()  # follows a rebuild, which only an unpinned store may do
        with self._meta.snapshot():
            self._refresh(pinning=True)
            self._pinned = True
            try:
                yield self._generation
            finally:
                self._pinned = False

    def read_consistent(self, read: Callable[[], T], patience: float = 30.0) -> T:
        """``read()`` inside ``snapshot()``, started over at the new state when a writer deleted files of
        the pinned generation under it (a compaction's emptied shards, a rebuild's old folder). It gives
        up after ``patience`` seconds of a store that changes under every attempt."""
        if self._pinned:
            return read()  # the outermost call owns the retry
        deadline = time.monotonic() + patience
        while True:
            generation = self._generation
            try:
                with self.snapshot() as generation:
                    return read()
            except StoreCorruptError:
                # A file of a state that is still the committed one is missing or damaged: real damage.
                moved = self._replaced() or self._meta.generation() != generation
                if not moved or time.monotonic() > deadline:
                    raise
                log.info("the index changed under a read; reading it again at its new state")

    def _meta_identity(self) -> tuple[int, int]:
        try:
            info = os.stat(self.directory / META_NAME)
        except OSError:
            return -1, -1  # MetaDB is about to say what is wrong
        return info.st_dev, info.st_ino

    def _replaced(self) -> bool:
        """Whether a rebuild put another store at ``path`` since we opened ours. Our SQLite connection
        keeps the old meta.sqlite's inode alive, so the new one's cannot be equal to it."""
        if self._rebuild_lock is not None:
            return False  # we are the rebuild, living in its staging folder until it commits
        if self.directory != self.path and not self.directory.exists():
            return True  # we read an interrupted swap's .NAME.old, which a writer has since moved
        try:
            info = os.stat(self.path / META_NAME)
        except OSError:
            return False  # mid-swap (between the renames): keep serving what we hold
        return (info.st_dev, info.st_ino) != self._identity

    def _reopen(self) -> None:
        """Serve the store a rebuild put at ``path`` instead of ours."""
        directory = readable_directory(self.path)
        manifest = read_manifest(directory)
        for what, old, new in (
            ("compressor", self.manifest.compressor, manifest.compressor),
            ("embedder", self.manifest.embedder, manifest.embedder),
        ):
            if old != new:  # the caller's models were chosen for the old one
                raise StoreRebuiltError(
                    f"the index at {self.path} was rebuilt with another {what} ({new.id}, not {old.id}); "
                    "open it again to use it"
                )
        self._meta.close()
        self._readers.clear()
        self.directory, self.manifest = directory, manifest
        self._identity = self._meta_identity()
        self._meta = MetaDB(directory / META_NAME, self.readonly)
        self._generation, self._shard_sha, self._index = -1, {}, None  # its chunk ids start over
        log.info("the index at %s was rebuilt; now reading the new one", self.path)
