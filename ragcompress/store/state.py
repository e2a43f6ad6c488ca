"""``OpenStore``: the state of one opened store directory, shared by ``Store`` and ``StoreWriter``.

``Store`` (store.py) is the public door: opening, search, chunks, vectors, documents, stats, updates.
``StoreWriter`` (writer.py) changes the store. Both work on one ``OpenStore``: the manifest, the SQLite
connection, the committed generation they last saw, the FAISS index of that generation and the cache of
open shard readers. Imports run one way: store.py → writer.py → state.py.

Readers pin one committed generation while writers commit (``snapshot``, ``read_consistent``) and follow
a rebuild that puts another store at the same path (``replaced``, ``reopen``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from ragcompress.store.device_vectors import DeviceVectors
from ragcompress.store.errors import StoreCorruptError, StoreRebuiltError
from ragcompress.store.faiss_index import FAISS_NAME, VectorIndex
from ragcompress.store.layout import readable_directory, swap_in
from ragcompress.store.lock import WriterLock
from ragcompress.store.manifest import Manifest, read_manifest
from ragcompress.store.meta import META_NAME, ChunkLocation, MetaDB
from ragcompress.store.shards import VECTORS_DIR, ShardReader

log = logging.getLogger("ragcompress.store.store")
MAX_OPEN_SHARDS = 256
T = TypeVar("T")


class OpenStore:
    """One store directory, open: what ``Store`` reads through and ``StoreWriter`` commits through."""

    def __init__(self, directory: Path, readonly: bool, verify_reads: bool) -> None:
        self.path = Path(directory)  # where the store lives (or will, for an uncommitted rebuild)
        self.directory = Path(directory)  # where its files are right now
        self.readonly = readonly
        self.verify_reads = verify_reads
        self.manifest: Manifest = read_manifest(self.directory)
        # Before the connection opens: a swap in between then reads as "replaced" and is followed.
        self.identity = self._meta_identity()
        self.meta = MetaDB(self.directory / META_NAME, readonly)
        self.generation = -1  # the committed generation ``index`` and ``shard_sha`` belong to
        self.index: VectorIndex | None = None
        self.index_was_stale = False  # faiss.index on disk was behind the metadata (rebuilt in memory)
        self.shard_sha: dict[str, str] = {}
        self.readers: OrderedDict[str, ShardReader] = OrderedDict()
        self.device_vectors: DeviceVectors | None = None  # shards' vectors held on a GPU (Store.hold_vectors)
        self.rebuild_lock: WriterLock | None = None  # held while this store replaces another
        self.pinned = False  # inside snapshot(): every read sees the generation it started at
        self.refresh()

    @property
    def rebuilding(self) -> bool:
        """A rebuild not finished yet: it lives in its staging folder until its writer finishes."""
        return self.rebuild_lock is not None

    def close(self) -> None:
        self.readers.clear()
        self.device_vectors = None
        self.meta.close()

    # ---- following commits -------------------------------------------------------------------------
    def refresh(self, pinning: bool = False) -> None:
        """Follow commits made since we last looked (by us or another process), and a rebuild."""
        if self.pinned:
            return  # a snapshot stays at its generation
        if not pinning and self.replaced():
            self.reopen()
        generation = self.meta.generation()
        if generation == self.generation:
            return
        with self.meta.snapshot():  # generation, shard list and chunk ids from one committed state
            generation = self.meta.generation()
            self.shard_sha = self._committed_shards()
            for name in [n for n in self.readers if n not in self.shard_sha]:
                del self.readers[name]
            if self.device_vectors is not None:
                self.device_vectors.keep_only(self.shard_sha)
            self.index, self.index_was_stale = self._load_index()
            self.generation = generation
        if self.index_was_stale:
            log.warning("%s is behind the committed metadata; rebuilt it in memory", FAISS_NAME)

    def committed(self, generation: int) -> None:
        """Called by the writer after its commit: ``generation`` and its shards are what we now hold."""
        self.generation = generation
        self.shard_sha = self._committed_shards()
        if self.device_vectors is not None:
            self.device_vectors.keep_only(self.shard_sha)

    def _committed_shards(self) -> dict[str, str]:
        return {row["name"]: row["sha256"] for row in self.meta.shard_rows()}

    # ---- the FAISS index ---------------------------------------------------------------------------
    def _load_index(self) -> tuple[VectorIndex, bool]:
        """``faiss.index`` if it holds exactly the live chunks, else a rebuild from the shards."""
        m = self.manifest
        if self.readonly and self.index is not None and m.faiss.kind == "flat":
            # A reader moves its exact index to the new generation reading only the added chunks'
            # embeddings: cheap, and it needs no file the writer may be replacing or deleting right now.
            # (A writer loads the file instead, so that it notices and re-saves a stale one.)
            live = self.meta.live_chunk_ids()
            have = self.index.ids()
            added = np.setdiff1d(live, have)
            embeddings = self.embeddings(added)  # first: a failed read leaves the index as it was
            self.index.remove(np.setdiff1d(have, live))
            self.index.add(added, embeddings)
            return self.index, False
        try:
            index = VectorIndex.load(self.directory / FAISS_NAME, m.faiss, m.embedder.dim)
            if np.array_equal(index.ids(), self.meta.live_chunk_ids()):
                return index, False
        except (RuntimeError, OSError) as error:
            log.warning("%s unreadable (%s)", self.directory / FAISS_NAME, error)
        return self.build_index(), True

    def build_index(self) -> VectorIndex:
        """A fresh FAISS index of the live chunks, from the embeddings kept in the shards."""
        m = self.manifest
        ids = self.meta.live_chunk_ids()
        return VectorIndex.build(m.faiss, m.embedder.dim, ids, self.embeddings(ids))

    def save_index(self) -> None:
        self.index.save(self.directory / FAISS_NAME)
        self.index_was_stale = False

    # ---- shards ------------------------------------------------------------------------------------
    def embeddings(self, chunk_ids: np.ndarray) -> np.ndarray:
        """The stored retrieval embeddings of these chunks ``[n, dim]``, in the order given."""
        by_shard: dict[str, list[ChunkLocation]] = {}
        locations = self.meta.locations(None if len(chunk_ids) > 500 else [int(i) for i in chunk_ids])
        wanted = {int(i) for i in chunk_ids}
        for loc in locations:
            if loc.chunk_id in wanted:
                by_shard.setdefault(loc.shard, []).append(loc)
        rows: dict[int, np.ndarray] = {}
        for shard, locs in by_shard.items():
            shard_embeddings = self.reader(shard).embeddings()
            rows.update((loc.chunk_id, shard_embeddings[loc.row]) for loc in locs)
        require_all(list(chunk_ids), rows)
        dim = self.manifest.embedder.dim
        return (
            np.stack([rows[int(i)] for i in chunk_ids]) if len(chunk_ids) else np.zeros((0, dim), np.float32)
        )

    def reader(self, name: str) -> ShardReader:
        """The reader of one committed shard, checked against its recorded sha256 when first opened."""
        reader = self.readers.get(name)
        if reader is None:
            if name not in self.shard_sha:
                self.shard_sha = self._committed_shards()
            expected = self.shard_sha.get(name)
            if expected is None:
                raise StoreCorruptError(f"chunk refers to shard {name}, which meta.sqlite does not list")
            path = self.directory / VECTORS_DIR / name
            # Verified once per open: later reads of the same shard trust the memory-mapped file.
            reader = ShardReader(path, expected if self.verify_reads else None, self.manifest.vector_dtype)
            self.readers[name] = reader
            while len(self.readers) > MAX_OPEN_SHARDS:
                self.readers.popitem(last=False)
        self.readers.move_to_end(name)
        return reader

    def forget_shard(self, name: str) -> None:
        """Close our reader of a shard the writer is about to delete."""
        self.readers.pop(name, None)

    # ---- consistent reads --------------------------------------------------------------------------
    @contextlib.contextmanager
    def snapshot(self) -> Iterator[int]:
        """Pin one committed generation (yielded) for every read in the block; nested uses share it.

        A SQLite read transaction pins the metadata (WAL keeps serving it to us while writers commit);
        the FAISS index is brought to that same generation on entry."""
        if self.pinned:
            yield self.generation
            return
        self.refresh()  # follows a rebuild, which only an unpinned store may do
        with self.meta.snapshot():
            self.refresh(pinning=True)
            self.pinned = True
            try:
                yield self.generation
            finally:
                self.pinned = False

    def read_consistent(self, read: Callable[[], T], patience: float = 30.0) -> T:
        """``read()`` inside ``snapshot()``, started over at the new state when a writer deleted files of
        the pinned generation under it (a compaction's emptied shards, a rebuild's old folder). It gives
        up after ``patience`` seconds of a store that changes under every attempt."""
        if self.pinned:
            return read()  # the outermost call owns the retry
        deadline = time.monotonic() + patience
        while True:
            generation = self.generation
            try:
                with self.snapshot() as generation:
                    return read()
            except StoreCorruptError:
                # A file of a state that is still the committed one is missing or damaged: real damage.
                moved = self.replaced() or self.meta.generation() != generation
                if not moved or time.monotonic() > deadline:
                    raise
                log.info("the index changed under a read; reading it again at its new state")

    # ---- rebuilds ----------------------------------------------------------------------------------
    def _meta_identity(self) -> tuple[int, int]:
        try:
            info = os.stat(self.directory / META_NAME)
        except OSError:
            return -1, -1  # MetaDB is about to say what is wrong
        return info.st_dev, info.st_ino

    def replaced(self) -> bool:
        """Whether a rebuild put another store at ``path`` since we opened ours. Our SQLite connection
        keeps the old meta.sqlite's inode alive, so the new one's cannot be equal to it."""
        if self.rebuilding:
            return False  # we are the rebuild, living in its staging folder until it finishes
        if self.directory != self.path and not self.directory.exists():
            return True  # we read an interrupted swap's .NAME.old, which a writer has since moved
        try:
            info = os.stat(self.path / META_NAME)
        except OSError:
            return False  # mid-swap (between the renames): keep serving what we hold
        return (info.st_dev, info.st_ino) != self.identity

    def reopen(self) -> None:
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
        self.meta.close()
        self.readers.clear()
        self.directory, self.manifest = directory, manifest
        self.identity = self._meta_identity()
        self.meta = MetaDB(directory / META_NAME, self.readonly)
        self.generation, self.shard_sha, self.index = -1, {}, None  # its chunk ids start over
        log.info("the index at %s was rebuilt; now reading the new one", self.path)

    def swap_in_rebuild(self) -> None:
        """Called by the writer when a rebuild finishes: replace the old store by the committed new one."""
        self.meta.close()  # SQLite must not have files open in a directory being renamed
        try:
            swap_in(self.directory, self.path)
            self.directory = self.path
        finally:
            self.identity = self._meta_identity()
            self.meta = MetaDB(self.directory / META_NAME, self.readonly)
            self.readers.clear()
        self.rebuild_lock.release()
        self.rebuild_lock = None


def require_all(asked: list[int], found: dict) -> None:
    missing = [int(i) for i in asked if int(i) not in found]
    if missing:
        raise KeyError(f"chunk ids not in the store: {missing[:10]}")
