"""``Store``: the on-disk index of a compressed corpus (read side; writes go through ``StoreWriter``)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ragcompress.store.check import check_store
from ragcompress.store.errors import StoreCorruptError, StoreError
from ragcompress.store.faiss_index import FAISS_NAME, VectorIndex
from ragcompress.store.layout import (
    create_fresh,
    finish_interrupted_swap,
    is_store,
    readable_directory,
    sibling,
    start_rebuild,
    swap_in,
)
from ragcompress.store.lock import WriterLock
from ragcompress.store.manifest import Counts, Manifest, ensure_compatible, read_manifest, utc_now
from ragcompress.store.meta import META_NAME, ChunkLocation, MetaDB
from ragcompress.store.ownership import remove_store_dir
from ragcompress.store.quantize import bytes_per_vector, dequantize
from ragcompress.store.reading import ConsistentReads
from ragcompress.store.records import Chunk, CompactResult, Document, SearchHit, StoreStats
from ragcompress.store.shards import VECTORS_DIR, ShardReader
from ragcompress.store.writer import StoreWriter

log = logging.getLogger(__name__)
MAX_OPEN_SHARDS = 256


class Store(ConsistentReads):
    """A store directory opened for reading (and, unless ``readonly``, for ``begin_update``)."""

    def __init__(self, directory: Path, readonly: bool = True, verify_reads: bool = True) -> None:
        self.path = Path(directory)  # where the store lives (or will, for an uncommitted rebuild)
        self.directory = Path(directory)  # where its files are right now
        self.readonly = readonly
        self.verify_reads = verify_reads
        self.manifest: Manifest = read_manifest(self.directory)
        # Before the connection opens: a swap in between then reads as "replaced" and is followed.
        self._identity = self._meta_identity()
        self._meta = MetaDB(self.directory / META_NAME, readonly)
        self._generation = -1
        self._index: VectorIndex | None = None
        self._shard_sha: dict[str, str] = {}
        self._readers: OrderedDict[str, ShardReader] = OrderedDict()
        self._rebuild_lock: WriterLock | None = None  # held while this store replaces another
        self._held_lock: WriterLock | None = None  # a new store's lock, until its first writer
        self._pinned = False  # inside snapshot(): every read sees the generation it started at
        self.index_was_stale = False
        self._refresh()

    # ---- opening -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, manifest: Manifest, overwrite: bool = False) -> Store:
        """Create an empty store. With ``overwrite``, an existing store stays intact and readable until
        the new one's first ``commit()`` replaces it."""
        path = Path(path)
        finish_interrupted_swap(path)
        manifest = replace(manifest, counts=Counts(), created_at=manifest.created_at or utc_now())
        if is_store(path) and not overwrite:
            raise StoreError(f"{path} already holds a store; pass overwrite=True (--rebuild) to replace it")
        if overwrite and path.is_dir() and any(path.iterdir()):
            # start_rebuild refuses any folder that is not provably a store: it is deleted on commit.
            staging, old_lock = start_rebuild(path, manifest)
            store = cls(staging, readonly=False)
            store.path, store._rebuild_lock = path, old_lock
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
        store.path = path
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
        if self._held_lock is not None:
            # The writer takes its own lock; two flocks of one process on the same file conflict.
            self._held_lock.release()
            self._held_lock = None
        return StoreWriter(self, shard_bytes=shard_bytes)

    def close(self) -> None:
        self._readers.clear()
        self._meta.close()
        if self._held_lock is not None:
            self._held_lock.release()
            self._held_lock = None
        if self._rebuild_lock is not None:  # a rebuild that never committed: drop it, keep the old
            remove_store_dir(self.directory)
            self._rebuild_lock.release()
            self._rebuild_lock = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading -----------------------------------------------------------------------------------
    def search(self, query: np.ndarray | torch.Tensor, k: int) -> list[SearchHit]:
        """The ``k`` best chunks for one query embedding ``[dim]``, best first."""
        queries = _as_matrix(query, self.manifest.embedder.dim)
        if len(queries) != 1:
            raise ValueError(f"search takes one query, got {len(queries)}; use search_batch")
        return self.search_batch(queries, k)[0]

    def search_batch(self, queries: np.ndarray | torch.Tensor, k: int) -> list[list[SearchHit]]:
        """``search`` for each row of ``[n, dim]``."""
        self._refresh()  # first: a rebuild may have brought another manifest
        queries = _as_matrix(queries, self.manifest.embedder.dim)
        if self.manifest.faiss.metric == "cosine":
            queries = normalise(queries)
        scores, ids = self._index.search(queries, k)
        return [
            [SearchHit(int(i), float(s)) for s, i in zip(row_scores, row_ids) if i >= 0]
            for row_scores, row_ids in zip(scores, ids)
        ]

    def get_chunks(self, chunk_ids: list[int]) -> list[Chunk]:
        """The chunks with these ids, in the order asked."""
        found = self.find_chunks(chunk_ids)
        _require_all(chunk_ids, found)
        return [found[int(i)] for i in chunk_ids]

    def find_chunks(self, chunk_ids: list[int]) -> dict[int, Chunk]:
        """chunk id → chunk, for the ids the store holds now (the others are left out)."""
        self._refresh()
        fields = Chunk.__dataclass_fields__
        rows = self._meta.chunk_rows([int(i) for i in chunk_ids])
        return {row["chunk_id"]: Chunk(**{k: v for k, v in row.items() if k in fields}) for row in rows}

    def get_vectors(
        self,
        chunk_ids: list[int],
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> list[torch.Tensor]:
        """The summary vectors ``[n_vectors, hidden]`` of each chunk, dequantised, in the order asked."""
        return self.read_consistent(lambda: self._read_vectors(chunk_ids, dtype, device))

    def _read_vectors(
        self, chunk_ids: list[int], dtype: torch.dtype, device: torch.device | str | None
    ) -> list[torch.Tensor]:
        locations = {loc.chunk_id: loc for loc in self._meta.locations(int(i) for i in chunk_ids)}
        _require_all(chunk_ids, locations)
        by_shard: dict[str, list[ChunkLocation]] = {}
        for loc in locations.values():
            by_shard.setdefault(loc.shard, []).append(loc)
        out: dict[int, torch.Tensor] = {}
        for shard, locs in by_shard.items():
            reader = self._reader(shard)
            for loc, quantized in zip(locs, reader.read_rows([loc.row for loc in locs])):
                if int(reader.offsets[loc.row]) != loc.vec_offset or len(quantized) != loc.n_vectors:
                    raise StoreCorruptError(f"shard {reader.path} row {loc.row} disagrees with meta.sqlite")
                out[loc.chunk_id] = dequantize(quantized, dtype, device)
        return [out[int(i)] for i in chunk_ids]

    def documents(self) -> list[Document]:
        self._refresh()
        return [_document(row) for row in self._meta.document_rows()]

    def document(self, doc_id: str) -> Document | None:
        self._refresh()
        rows = self._meta.document_rows(doc_id)
        return _document(rows[0]) if rows else None

    def content_hashes(self) -> dict[str, str]:
        """doc_id → content hash, for deciding what an incremental re-index must redo."""
        return {doc.doc_id: doc.content_hash for doc in self.documents()}

    def stats(self) -> StoreStats:
        self._refresh()
        totals = self._meta.totals()
        m = self.manifest
        vector_bytes = totals["vectors"] * bytes_per_vector(
            m.compressor.hidden_size, m.vector_dtype, m.scale_dtype
        )
        disk_bytes = sum(f.stat().st_size for f in self.directory.rglob("*") if f.is_file())
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
            generation=self._meta.generation(),
        )

    def check(self) -> list[str]:
        """Problems found on disk (manifest, checksums, counts, FAISS); an empty list means healthy."""
        return check_store(self.directory)

    def compact(self, min_dead_fraction: float = 0.25) -> CompactResult:
        """Rewrite shards that are mostly deleted rows (or tiny) into fresh ones; one commit."""
        with self.begin_update() as writer:
            return writer.compact(min_dead_fraction)

    # ---- internals shared with the writer ----------------------------------------------------------
    def _refresh(self, pinning: bool = False) -> None:
        """Follow commits made since we last looked (by us or another process), and a rebuild."""
        if self._pinned:
            return  # a snapshot stays at its generation
        if not pinning and self._replaced():
            self._reopen()
        generation = self._meta.generation()
        if generation == self._generation:
            return
        with self._meta.snapshot():  # generation, shard list and chunk ids from one committed state
            generation = self._meta.generation()
            self._shard_sha = {row["name"]: row["sha256"] for row in self._meta.shard_rows()}
            for name in [n for n in self._readers if n not in self._shard_sha]:
                del self._readers[name]
            self._index, self.index_was_stale = self._load_index()
            self._generation = generation
        if self.index_was_stale:
            log.warning("%s is behind the committed metadata; rebuilt it in memory", FAISS_NAME)

    def _load_index(self) -> tuple[VectorIndex, bool]:
        """``faiss.index`` if it holds exactly the live chunks, else a rebuild from the shards."""
        m = self.manifest
        if self.readonly and self._index is not None and m.faiss.kind == "flat":
            # A reader moves its exact index to the new generation reading only the added chunks'
            # embeddings: cheap, and it needs no file the writer may be replacing or deleting right now.
            # (A writer loads the file instead, so that it notices and re-saves a stale one.)
            live = self._meta.live_chunk_ids()
            have = self._index.ids()
            added = np.setdiff1d(live, have)
            embeddings = self._embeddings(added)  # first: a failed read leaves the index as it was
            self._index.remove(np.setdiff1d(have, live))
            self._index.add(added, embeddings)
            return self._index, False
        try:
            index = VectorIndex.load(self.directory / FAISS_NAME, m.faiss, m.embedder.dim)
            if np.array_equal(index.ids(), self._meta.live_chunk_ids()):
                return index, False
        except (RuntimeError, OSError) as error:
            log.warning("%s unreadable (%s)", self.directory / FAISS_NAME, error)
        return self._build_index(), True

    def _build_index(self) -> VectorIndex:
        m = self.manifest
        ids = self._meta.live_chunk_ids()
        return VectorIndex.build(m.faiss, m.embedder.dim, ids, self._embeddings(ids))

    def _embeddings(self, chunk_ids: np.ndarray) -> np.ndarray:
        """The stored retrieval embeddings of these chunks ``[n, dim]``, in the order given."""
        by_shard: dict[str, list[ChunkLocation]] = {}
        locations = self._meta.locations(None if len(chunk_ids) > 500 else [int(i) for i in chunk_ids])
        wanted = {int(i) for i in chunk_ids}
        for loc in locations:
            if loc.chunk_id in wanted:
                by_shard.setdefault(loc.shard, []).append(loc)
        rows: dict[int, np.ndarray] = {}
        for shard, locs in by_shard.items():
            shard_embeddings = self._reader(shard).embeddings()
            rows.update((loc.chunk_id, shard_embeddings[loc.row]) for loc in locs)
        _require_all(list(chunk_ids), rows)
        dim = self.manifest.embedder.dim
        return (
            np.stack([rows[int(i)] for i in chunk_ids]) if len(chunk_ids) else np.zeros((0, dim), np.float32)
        )

    def _reader(self, name: str) -> ShardReader:
        reader = self._readers.get(name)
        if reader is None:
            if name not in self._shard_sha:
                self._shard_sha = {row["name"]: row["sha256"] for row in self._meta.shard_rows()}
            expected = self._shard_sha.get(name)
            if expected is None:
                raise StoreCorruptError(f"chunk refers to shard {name}, which meta.sqlite does not list")
            path = self.directory / VECTORS_DIR / name
            # Verified once per open: later reads of the same shard trust the memory-mapped file.
            reader = ShardReader(path, expected if self.verify_reads else None, self.manifest.vector_dtype)
            self._readers[name] = reader
            while len(self._readers) > MAX_OPEN_SHARDS:
                self._readers.popitem(last=False)
        self._readers.move_to_end(name)
        return reader

    def _swap_in_rebuild(self) -> None:
        """Called by the writer right after a rebuild's first commit: replace the old store."""
        self._meta.close()  # SQLite must not have files open in a directory being renamed
        try:
            swap_in(self.directory, self.path)
            self.directory = self.path
        finally:
            self._identity = self._meta_identity()
            self._meta = MetaDB(self.directory / META_NAME, self.readonly)
            self._readers.clear()
        self._rebuild_lock.release()
        self._rebuild_lock = None


def normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _as_matrix(values: np.ndarray | torch.Tensor, dim: int) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    matrix = np.asarray(values, dtype=np.float32)
    matrix = matrix.reshape(1, -1) if matrix.ndim == 1 else matrix
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise ValueError(f"expected embeddings of dimension {dim}, got shape {np.shape(values)}")
    return matrix


def _require_all(asked: list[int], found: dict) -> None:
    missing = [int(i) for i in asked if int(i) not in found]
    if missing:
        raise KeyError(f"chunk ids not in the store: {missing[:10]}")


def _document(row: dict) -> Document:
    fields = Document.__dataclass_fields__
    return Document(**{k: v for k, v in row.items() if k in fields})
