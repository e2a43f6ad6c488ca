"""``Store``: the one door to a built index — open or create it, search it, read its chunks and summary
vectors, list its documents, update it (``begin_update`` → ``StoreWriter``), check and compact it.

The open state it reads through (manifest, SQLite, FAISS, shard readers) is an ``OpenStore`` (state.py),
which the writer commits through; imports run one way: store.py → writer.py → state.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ragcompress.store.check import check_store
from ragcompress.store.device_vectors import DeviceVectors
from ragcompress.store.errors import StoreCorruptError, StoreError
from ragcompress.store.faiss_index import normalise
from ragcompress.store.layout import (
    check_target,
    create_fresh,
    finish_interrupted_swap,
    is_store,
    readable_directory,
    sibling,
    start_rebuild,
)
from ragcompress.store.lock import WriterLock
from ragcompress.store.manifest import Counts, Manifest, ensure_compatible, utc_now
from ragcompress.store.meta import ChunkLocation
from ragcompress.store.ownership import remove_store_dir
from ragcompress.store.quantize import QuantizedVectors, bytes_per_vector, dequantize_many
from ragcompress.store.records import Chunk, CompactResult, SearchHit, StoredDocument, StoreStats
from ragcompress.store.sizes import committed_disk_bytes
from ragcompress.store.state import OpenStore, require_all
from ragcompress.store.writer import StoreWriter

T = TypeVar("T")


class Store:
    """A store directory opened for reading (and, unless ``readonly``, for ``begin_update``)."""

    def __init__(self, directory: Path, readonly: bool = True, verify_reads: bool = True) -> None:
        self._state = OpenStore(Path(directory), readonly, verify_reads)
        self._held_lock: WriterLock | None = None  # a new store's lock, until its first writer

    # ---- what it is --------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """Where the store lives (or will, for a rebuild that has not finished yet)."""
        return self._state.path

    @property
    def directory(self) -> Path:
        """Where its files are right now (a rebuild's staging folder until it finishes)."""
        return self._state.directory

    @property
    def readonly(self) -> bool:
        return self._state.readonly

    @property
    def manifest(self) -> Manifest:
        return self._state.manifest

    @property
    def index_was_stale(self) -> bool:
        """Whether faiss.index was behind the committed metadata when last loaded (rebuilt in memory)."""
        return self._state.index_was_stale

    @staticmethod
    def exists(path: str | Path) -> bool:
        """Whether ``path`` holds a store (a damaged one in a folder proven to be a store counts)."""
        return is_store(Path(path))

    @staticmethod
    def check_path(path: str | Path) -> list[str]:
        """``check()`` for a store that may not even open: problems found, one line each."""
        return check_store(Path(path))

    @staticmethod
    def probe_writable(path: str | Path, rebuild: bool = False) -> None:
        """Raise ``StoreError`` (or ``StoreLockedError``) now if ``open_or_create(path, rebuild=rebuild)``
        would be refused: a file, a folder that is not a store, a store another writer holds. Writes
        nothing, not even a lock file into a folder that is not provably a store."""
        path = Path(path)
        check_target(path, rebuild)
        if is_store(path):
            with WriterLock(path):  # taken for real by the writer later; this only fails fast
                pass

    # ---- opening -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, manifest: Manifest, overwrite: bool = False) -> Store:
        """Create an empty store. With ``overwrite``, an existing store stays intact and readable until
        the new one's writer finishes (``StoreWriter.finish``, or leaving its ``with`` block) and replaces
        it. The commits of a rebuild stopped before that are kept: the next rebuild with the same settings
        starts from them (its documents are already in the new store)."""
        path = Path(path)
        finish_interrupted_swap(path)
        manifest = replace(manifest, counts=Counts(), created_at=manifest.created_at or utc_now())
        if is_store(path) and not overwrite:
            raise StoreError(f"{path} already holds a store; pass overwrite=True (--rebuild) to replace it")
        if overwrite and path.is_dir() and any(path.iterdir()):
            # start_rebuild refuses any folder that is not provably a store: it is deleted on commit.
            staging, old_lock = start_rebuild(path, manifest)
            store = cls(staging, readonly=False)
            store._state.path, store._state.rebuild_lock = path, old_lock
            return store
        lock = create_fresh(path, manifest)
        try:
            store = cls(path, readonly=False)
        except BaseException:
            lock.release()
            raise
        store._held_lock = lock
        return store

    @classmethod
    def open(cls, path: str | Path, readonly: bool = True, verify_reads: bool = True) -> Store:
        """Open an existing store. Read-only opens never modify the directory."""
        path = Path(path)
        if not readonly:
            finish_interrupted_swap(path)
        store = cls(readable_directory(path), readonly=readonly, verify_reads=verify_reads)
        store._state.path = path
        return store

    @classmethod
    def open_or_create(cls, path: str | Path, manifest: Manifest, rebuild: bool = False) -> Store:
        """What ``ragcompress index`` needs: reuse a compatible store, refuse an incompatible one."""
        path = Path(path)
        if rebuild:
            return cls.create(path, manifest, overwrite=True)
        if is_store(path) or (not path.exists() and is_store(sibling(path, "old"))):
            store = cls.open(path, readonly=False)
            try:
                ensure_compatible(store.manifest, manifest, path)
            except StoreError:
                store.close()
                raise
            return store
        return cls.create(path, manifest)

    def begin_update(self, expect: Manifest | None = None, shard_bytes: int = 64 << 20) -> StoreWriter:
        """Take the writer lock and return the writer (use it as a context manager)."""
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only; open it with readonly=False to write")
        if expect is not None:
            ensure_compatible(self.manifest, expect, self.path)
        held, self._held_lock = self._held_lock, None  # a new store's lock passes to its first writer
        return StoreWriter(self._state, shard_bytes=shard_bytes, lock=held)

    def close(self) -> None:
        state = self._state
        # a rebuild that did not finish leaves the old store in place; its commits, if any, are kept for
        # the next rebuild with these settings to go on from (layout.start_rebuild)
        unfinished = state.rebuild_lock is not None
        committed = unfinished and state.meta.generation() > 0
        state.close()
        if self._held_lock is not None:
            self._held_lock.release()
            self._held_lock = None
        if unfinished:
            if not committed:
                remove_store_dir(state.directory)
            state.rebuild_lock.release()
            state.rebuild_lock = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- one committed state -----------------------------------------------------------------------
    @contextlib.contextmanager
    def snapshot(self) -> Iterator[int]:
        """Pin one committed generation (yielded) for every read in the block: searches, chunk lookups
        and vector reads all see that state, whatever a writer commits meanwhile. Nested uses share it."""
        with self._state.snapshot() as generation:
            yield generation

    def read_consistent(self, read: Callable[[], T], patience: float = 30.0) -> T:
        """``read()`` inside ``snapshot()``, started over at the new state when a writer deleted files of
        the pinned generation under it; gives up after ``patience`` seconds of a store changing under
        every attempt."""
        return self._state.read_consistent(read, patience)

    # ---- reading -----------------------------------------------------------------------------------
    def search(self, query: np.ndarray | torch.Tensor, k: int) -> list[SearchHit]:
        """The ``k`` best chunks for one query embedding ``[dim]``, best first."""
        queries = _as_matrix(query, self.manifest.embedder.dim)
        if len(queries) != 1:
            raise ValueError(f"search takes one query, got {len(queries)}; use search_batch")
        return self.search_batch(queries, k)[0]

    def search_batch(
        self, queries: np.ndarray | torch.Tensor, k: int, device: torch.device | str | None = None
    ) -> list[list[SearchHit]]:
        """``search`` for each row of ``[n, dim]``. ``device``: the caller's; on a GPU a flat index is
        searched there (faiss_index.py), with the CPU search's hits."""
        self._state.refresh()  # first: a rebuild may have brought another manifest
        queries = _as_matrix(queries, self.manifest.embedder.dim)
        if self.manifest.faiss.metric == "cosine":
            queries = normalise(queries)
        scores, ids = self._state.index.search(queries, k, device)
        return [
            [SearchHit(int(i), float(s)) for s, i in zip(row_scores, row_ids) if i >= 0]
            for row_scores, row_ids in zip(scores, ids)
        ]

    @property
    def last_search_route(self) -> str | None:
        """Where the latest search ran ("torch", "faiss-gpu" or "faiss-cpu": VectorIndex.search_route);
        None before the first search of the index as loaded."""
        index = self._state.index
        return index.last_route if index is not None else None

    def chunk_ids(self) -> np.ndarray:
        """The ids of every chunk the store holds now, ascending."""
        self._state.refresh()
        return self._state.meta.live_chunk_ids()

    def get_chunks(self, chunk_ids: list[int]) -> list[Chunk]:
        """The chunks with these ids, in the order asked."""
        found = self.find_chunks(chunk_ids)
        require_all(chunk_ids, found)
        return [found[int(i)] for i in chunk_ids]

    def find_chunks(self, chunk_ids: list[int]) -> dict[int, Chunk]:
        """chunk id → chunk, for the ids the store holds now (the others are left out)."""
        self._state.refresh()
        fields = Chunk.__dataclass_fields__
        rows = self._state.meta.chunk_rows([int(i) for i in chunk_ids])
        return {row["chunk_id"]: Chunk(**{k: v for k, v in row.items() if k in fields}) for row in rows}

    def get_vectors(
        self,
        chunk_ids: list[int],
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> list[torch.Tensor]:
        """The summary vectors ``[n_vectors, hidden]`` of each chunk, dequantised, in the order asked."""
        return self.read_consistent(lambda: self._read_vectors(chunk_ids, dtype, device))

    def hold_vectors(
        self, device: torch.device | str, dtype: torch.dtype, max_bytes: int | None = None
    ) -> None:
        """Keep the shards' summary vectors on ``device`` in ``dtype`` once read (store/device_vectors.py):
        ``get_vectors`` in that dtype and on that device then slices them there instead of moving them
        from the host. ``max_bytes``: at most this much (default: a quarter of the free device memory)."""
        self._state.device_vectors = DeviceVectors(device, dtype, max_bytes)

    def release_vectors(self) -> int:
        """Stop holding vectors on a device (``hold_vectors``) and free what they took: the bytes freed."""
        held, self._state.device_vectors = self._state.device_vectors, None
        return 0 if held is None else held.nbytes

    def preload_vectors(self) -> int:
        """Load every committed shard into the vectors held by ``hold_vectors`` (as far as they fit), so
        that no answer pays for it; the bytes held."""
        held = self._state.device_vectors
        if held is None:
            return 0

        def load() -> int:
            for name, sha in self._state.shard_sha.items():
                held.shard((name, sha), self._state.reader(name))
            return held.nbytes

        return self.read_consistent(load)

    def _read_vectors(
        self, chunk_ids: list[int], dtype: torch.dtype, device: torch.device | str | None
    ) -> list[torch.Tensor]:
        locations = {loc.chunk_id: loc for loc in self._state.meta.locations(int(i) for i in chunk_ids)}
        require_all(chunk_ids, locations)
        by_shard: dict[str, list[ChunkLocation]] = {}
        for loc in locations.values():
            by_shard.setdefault(loc.shard, []).append(loc)
        held = self._state.device_vectors
        if held is not None and not held.serves(dtype, device):
            held = None
        on_device: dict[int, torch.Tensor] = {}
        read: dict[int, QuantizedVectors] = {}
        for shard, locs in by_shard.items():
            reader = self._state.reader(shard)
            whole = None if held is None else held.shard((shard, self._state.shard_sha[shard]), reader)
            if whole is None:
                read.update(
                    (loc.chunk_id, q) for loc, q in zip(locs, reader.read_rows([loc.row for loc in locs]))
                )
            for loc in locs:
                start, stop = reader.row_span(loc.row)
                if start != loc.vec_offset or stop - start != loc.n_vectors:
                    raise StoreCorruptError(f"shard {reader.path} row {loc.row} disagrees with meta.sqlite")
                if whole is not None:
                    on_device[loc.chunk_id] = whole[start:stop]
        vectors = _copies(on_device)  # the held tensors stay out of reach of a caller's in-place ops
        vectors.update(zip(read, dequantize_many(list(read.values()), dtype, device)))
        return [vectors[int(i)] for i in chunk_ids]

    def documents(self) -> list[StoredDocument]:
        self._state.refresh()
        return [_document(row) for row in self._state.meta.document_rows()]

    def document(self, doc_id: str) -> StoredDocument | None:
        self._state.refresh()
        rows = self._state.meta.document_rows(doc_id)
        return _document(rows[0]) if rows else None

    def content_hashes(self) -> dict[str, str]:
        """doc_id → content hash, for deciding what an incremental re-index must redo."""
        return {doc.doc_id: doc.content_hash for doc in self.documents()}

    def stats(self) -> StoreStats:
        self._state.refresh()
        totals = self._state.meta.totals()
        m = self.manifest
        vector_bytes = totals["vectors"] * bytes_per_vector(
            m.compressor.hidden_size, m.vector_dtype, m.scale_dtype
        )
        disk_bytes = committed_disk_bytes(self._state)  # not -wal/-shm/lock files, which come and go
        tokens = totals["tokens"]
        return StoreStats(
            documents=totals["documents"],
            chunks=totals["chunks"],
            tokens=tokens,
            vectors=totals["vectors"],
            vector_bytes=vector_bytes,
            disk_bytes=disk_bytes,
            bytes_per_token=vector_bytes / tokens if tokens else 0.0,
            disk_bytes_per_token=disk_bytes / tokens if tokens else 0.0,
            compressor=m.compressor.id,
            embedder=m.embedder.id,
            vector_dtype=m.vector_dtype,
            generation=self._state.meta.generation(),
        )

    def check(self) -> list[str]:
        """Problems found on disk (manifest, checksums, counts, FAISS); an empty list means healthy."""
        return check_store(self._state.directory)

    def compact(self, min_dead_fraction: float = 0.25) -> CompactResult:
        """Rewrite shards that are mostly deleted rows (or tiny) into fresh ones; one commit."""
        with self.begin_update() as writer:
            return writer.compact(min_dead_fraction)


def _as_matrix(values: np.ndarray | torch.Tensor, dim: int) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    matrix = np.asarray(values, dtype=np.float32)
    matrix = matrix.reshape(1, -1) if matrix.ndim == 1 else matrix
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise ValueError(f"expected embeddings of dimension {dim}, got shape {np.shape(values)}")
    return matrix


def _copies(views: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """The tensors of ``views`` copied at once: consecutive views of one new tensor (one device kernel)."""
    if not views:
        return {}
    whole = torch.cat(list(views.values()))
    return dict(zip(views, whole.split([len(v) for v in views.values()])))


def _document(row: dict) -> StoredDocument:
    fields = StoredDocument.__dataclass_fields__
    return StoredDocument(**{k: v for k, v in row.items() if k in fields})
