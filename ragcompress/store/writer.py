"""``StoreWriter``: the one process allowed to change a store, and the commit protocol.

commit() =
    1. write pending vectors as NEW shard files (temp name, fsync, rename) — invisible until step 2;
    2. ONE SQLite transaction: shards + documents + chunks + deletions + generation += 1  (commit point);
    3. rewrite faiss.index atomically (temp + rename) from the in-memory index;
    4. rewrite manifest.json's counts atomically.
A crash before 2 leaves unreferenced shard files (deleted by the next writer); a crash after 2 leaves
an index or counts one generation behind, which every open detects (the index's id set differs from
the committed chunks) and repairs from the embeddings kept in the shards.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ragcompress.store.check import missing_shards
from ragcompress.store.errors import StoreCorruptError, StoreError
from ragcompress.store.faiss_index import normalise
from ragcompress.store.fsutil import fsync_dir, is_temp_name
from ragcompress.store.lock import WriterLock
from ragcompress.store.manifest import Counts, write_manifest
from ragcompress.store.meta import PendingCommit
from ragcompress.store.quantize import quantize
from ragcompress.store.records import INDEXED, PARTIAL, CompactResult
from ragcompress.store.shards import VECTORS_DIR, ShardInfo, ShardRow, shard_name, write_shard
from ragcompress.store.state import OpenStore

log = logging.getLogger(__name__)


class StoreWriter:
    """Buffered changes to a store, made durable by ``commit()``; holds the store's writer lock.

    Made by ``Store.begin_update()``; it commits through the store's ``OpenStore`` (state.py), so the
    ``Store`` that made it sees each commit at once."""

    def __init__(self, state: OpenStore, shard_bytes: int = 64 << 20, lock: WriterLock | None = None) -> None:
        self.state = state
        self.shard_bytes = shard_bytes
        # ``lock``: one already held (a new store's, from before it appeared), handed over, never let go in
        # between: a racing creator's check would take it in that gap, and this writer would then fail.
        self._lock = lock if lock is not None else WriterLock(state.directory)
        self._lock.acquire()
        try:
            self._recover()
        except BaseException:
            self._lock.release()
            raise
        self._reset()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None and self._lock.held:  # (closed in the block: nothing left to finish)
            self.finish()
        else:
            self.close()

    def finish(self) -> int:
        """Commit what is staged and close; a rebuild's new store then replaces the old one (its commit
        point). Returns the generation. Until then a rebuild's commits stay in its staging folder and the
        old store is the one at the path: a rebuild stopped part-way loses nothing, and the next rebuild
        with the same settings goes on from its commits (layout.start_rebuild)."""
        if not self._lock.held:
            raise StoreError("this writer is closed; begin a new update to write")
        try:
            generation = self.commit()
            if self.state.rebuilding:
                self.state.swap_in_rebuild()
            return generation
        finally:
            self.close()

    def close(self) -> None:
        """Discard uncommitted changes and release the lock."""
        if self._lock.held:
            self._discard_written()
            self._reset()
            self._lock.release()

    # ---- recovery ----------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Bring the derived files in line with the last commit (we hold the lock, nobody else writes)."""
        state = self.state
        state.refresh()  # follows commits made since the store was opened
        problems = missing_shards(state.directory, state.meta)
        if problems:  # adding to the store would only hide it: its answers need those vectors
            raise StoreCorruptError(f"{problems[0]}; restore the file or rebuild the index (--rebuild)")
        if state.index_was_stale:  # faiss.index was not the committed one: persist the rebuilt index
            state.save_index()
        committed = set(state.shard_sha)
        removed = 0
        for directory in (state.directory, state.directory / VECTORS_DIR):
            for entry in directory.iterdir():
                garbage = is_temp_name(entry.name) or (
                    directory.name == VECTORS_DIR and entry.name not in committed
                )
                if garbage and entry.is_file():
                    entry.unlink()  # written by a writer that died before its commit
                    removed += 1
        if removed:
            fsync_dir(state.directory / VECTORS_DIR)
            log.info("removed %d uncommitted file(s) left by an interrupted writer", removed)
        self._write_counts(state.generation)

    # ---- staging changes ---------------------------------------------------------------------------
    def _reset(self) -> None:
        self._next_id = self.state.meta.next_chunk_id()
        self._documents: dict[str, dict[str, Any]] = {}
        self._chunks: dict[int, dict[str, Any]] = {}  # chunk_id -> row for the chunks table
        self._embeddings: dict[int, np.ndarray] = {}
        self._buffer: list[ShardRow] = []
        self._buffer_bytes = 0
        self._written: list[ShardInfo] = []
        self._relocations: dict[int, tuple[str, int, int]] = {}
        self._removed: set[str] = set()
        self._dropping: list[str] = []  # shards a compaction empties, deleted after its commit

    def _committed(self, doc_id: str) -> bool:
        return self._committed_row(doc_id) is not None

    def _committed_row(self, doc_id: str) -> dict[str, Any] | None:
        rows = [] if doc_id in self._removed else self.state.meta.document_rows(doc_id)
        return rows[0] if rows else None

    def add_document(
        self,
        doc_id: str,
        path: str,
        content_hash: str,
        chunks: Sequence[Any],
        embeddings: np.ndarray | torch.Tensor,
        vectors: Sequence[torch.Tensor],
        metadata: dict[str, Any] | None = None,
        status: str = INDEXED,
        replace: bool = False,
        append: bool = False,
    ) -> list[int]:
        """Stage one document: its chunks (objects with text, char_start, char_end, n_tokens), one
        embedding per chunk ``[n, dim]`` and one summary tensor ``[n_vectors, hidden]`` per chunk.
        Returns the chunk ids. A document already in the store needs ``replace=True``.

        ``append=True`` continues a document stored with status ``"partial"`` (a long document committed
        in pieces): the chunks follow its last ordinal and its row takes the new totals and ``status``."""
        m = self.state.manifest
        if isinstance(embeddings, torch.Tensor):
            embeddings = embeddings.detach().to("cpu", torch.float32).numpy()
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.size == 0:  # a document with no chunks (an empty file)
            embeddings = embeddings.reshape(0, m.embedder.dim)
        if embeddings.ndim != 2:
            raise ValueError(f"{doc_id}: embeddings must be [n_chunks, dim], got shape {embeddings.shape}")
        if not (len(chunks) == len(embeddings) == len(vectors)):
            raise ValueError(
                f"{doc_id}: {len(chunks)} chunks, {len(embeddings)} embeddings, {len(vectors)} vectors"
            )
        if len(chunks) and embeddings.shape[1] != m.embedder.dim:
            raise ValueError(
                f"{doc_id}: embeddings have dimension {embeddings.shape[1]}, the store {m.embedder.dim}"
            )
        if not np.isfinite(embeddings).all():
            raise ValueError(f"{doc_id}: embeddings contain NaN or infinity")
        for i, tensor in enumerate(vectors):
            if tensor.dim() != 2 or tensor.shape[0] == 0 or tensor.shape[1] != m.compressor.hidden_size:
                raise ValueError(
                    f"{doc_id} chunk {i}: summary vectors of shape {tuple(tensor.shape)}, "
                    f"expected [n ≥ 1, {m.compressor.hidden_size}]"
                )
        first_ordinal, tokens_before = 0, 0
        if append:
            base = self._documents.get(doc_id) or self._committed_row(doc_id)
            if base is None or base["status"] != PARTIAL:
                raise StoreError(f"document {doc_id!r} is not a partial document of the store; cannot append")
            first_ordinal, tokens_before = base["n_chunks"], base["n_tokens"]
        elif doc_id in self._documents or self._committed(doc_id):
            if not replace:
                raise StoreError(
                    f"document {doc_id!r} is already in the store; pass replace=True to update it"
                )
            self.remove_document(doc_id)
        if m.faiss.metric == "cosine":
            embeddings = normalise(embeddings)

        ids = []
        for ordinal, (chunk, embedding, tensor) in enumerate(zip(chunks, embeddings, vectors)):
            chunk_id = self._next_id
            self._next_id += 1
            quantized = quantize(tensor, m.vector_dtype, m.scale_dtype)
            self._chunks[chunk_id] = {
                "chunk_id": chunk_id,
                "doc_id": doc_id,
                "ordinal": first_ordinal + ordinal,
                "text": chunk.text,
                "char_start": int(chunk.char_start),
                "char_end": int(chunk.char_end),
                "n_tokens": int(chunk.n_tokens),
                "n_vectors": len(quantized),
            }
            self._embeddings[chunk_id] = embedding
            self._buffer.append(ShardRow(chunk_id, quantized, embedding))
            self._buffer_bytes += quantized.nbytes + embedding.nbytes
            ids.append(chunk_id)
        self._documents[doc_id] = {
            "doc_id": doc_id,
            "path": str(path),
            "content_hash": content_hash,
            "n_chunks": first_ordinal + len(ids),
            "n_tokens": tokens_before + sum(self._chunks[i]["n_tokens"] for i in ids),
            "metadata": dict(metadata or {}),
            "status": status,
        }
        if self._buffer_bytes >= self.shard_bytes:
            self._flush()
        return ids

    def remove_document(self, doc_id: str) -> bool:
        """Stage the removal of a document; False when there is no such document."""
        if doc_id in self._documents:
            del self._documents[doc_id]
            dropped = {i for i, row in self._chunks.items() if row["doc_id"] == doc_id}
            for chunk_id in dropped:
                del self._chunks[chunk_id]
                del self._embeddings[chunk_id]
            # Rows already flushed into a written shard simply stay there, unreferenced (dead rows).
            self._buffer = [row for row in self._buffer if row.chunk_id not in dropped]
            self._buffer_bytes = sum(r.vectors.nbytes + r.embedding.nbytes for r in self._buffer)
            removed_pending = True
        else:
            removed_pending = False
        if self._committed(doc_id):
            self._removed.add(doc_id)
            return True
        return removed_pending

    @property
    def has_changes(self) -> bool:
        staged = (
            self._documents,
            self._removed,
            self._relocations,
            self._written,
            self._dropping,
            self._buffer,
        )
        return any(map(bool, staged))

    @property
    def needs_commit(self) -> bool:
        """Staged changes, or a rebuild with no commit yet: even an empty one has a store to put in place."""
        return self.has_changes or (self.state.rebuilding and self.state.meta.generation() == 0)

    # ---- making it durable -------------------------------------------------------------------------
    def _flush(self) -> None:
        """Write the buffered rows as one new (not yet committed) shard file."""
        if not self._buffer:
            return
        name = shard_name(self.state.meta.generation() + 1, len(self._written))
        info = write_shard(
            self.state.directory / VECTORS_DIR, name, self._buffer, self.state.manifest.vector_dtype
        )
        offset = 0
        for row_index, row in enumerate(self._buffer):
            location = (name, row_index, offset)
            offset += len(row.vectors)
            if row.chunk_id in self._chunks:
                self._chunks[row.chunk_id].update(shard=name, row=row_index, vec_offset=location[2])
            else:
                self._relocations[row.chunk_id] = location  # compaction moves an existing chunk
        self._written.append(info)
        self._buffer, self._buffer_bytes = [], 0

    def commit(self) -> int:
        """Make every staged change durable at once; returns the new generation."""
        state = self.state
        if not self.needs_commit:
            return state.meta.generation()
        self._flush()
        removed_ids = np.array(state.meta.chunk_ids_of(sorted(self._removed)), dtype=np.int64)
        pending = PendingCommit(
            shards=list(self._written),
            documents=list(self._documents.values()),
            chunks=[self._chunks[i] for i in sorted(self._chunks)],
            removed_documents=sorted(self._removed),
            relocations=dict(self._relocations),
            dropped_shards=list(self._dropping),
            next_chunk_id=self._next_id,
        )
        generation = state.meta.apply(pending)  # ← the commit point
        self._written = []  # committed: no longer ours to delete
        self._update_index(removed_ids)
        state.committed(generation)
        self._write_counts(generation)
        self._delete_dropped_shards()
        self._reset()
        return generation

    def _update_index(self, removed_ids: np.ndarray) -> None:
        state = self.state
        index = state.index
        n_live = len(state.meta.live_chunk_ids())
        added = sorted(self._embeddings)
        if index.needs_rebuild(n_live, removing=len(removed_ids) > 0):
            state.index = state.build_index()
        elif added or len(removed_ids):
            index.remove(removed_ids)
            if added:
                index.add(np.array(added, dtype=np.int64), np.stack([self._embeddings[i] for i in added]))
        else:
            return  # a compaction moves vectors but not ids: the index is unchanged
        state.save_index()

    def _write_counts(self, generation: int) -> None:
        state = self.state
        counts = Counts(generation=generation, **state.meta.totals())
        if state.manifest.counts != counts:
            state.manifest = replace(state.manifest, counts=counts)
            write_manifest(state.directory, state.manifest)

    def _discard_written(self) -> None:
        for info in self._written:
            try:
                os.unlink(self.state.directory / VECTORS_DIR / info.name)
            except FileNotFoundError:
                pass
        self._written = []

    # ---- compaction --------------------------------------------------------------------------------
    def compact(self, min_dead_fraction: float = 0.25) -> CompactResult:
        """Rewrite shards whose rows are mostly deleted, and merge small shards, in one commit."""
        if self.has_changes:
            raise StoreError("commit or discard staged changes before compacting")
        state = self.state
        shards = state.meta.shard_rows()
        live = state.meta.live_rows_per_shard()
        small = [s for s in shards if s["bytes"] < self.shard_bytes // 4]
        chosen = [
            s
            for s in shards
            if 1 - live.get(s["name"], 0) / s["rows"] >= min_dead_fraction or (len(small) > 1 and s in small)
        ]
        if not chosen:
            return CompactResult(len(shards), len(shards), 0)
        by_shard: dict[str, list] = {}
        for loc in state.meta.locations():
            by_shard.setdefault(loc.shard, []).append(loc)
        for shard in chosen:
            locations = by_shard.get(shard["name"], [])
            reader = state.reader(shard["name"])
            embeddings = reader.embeddings()
            for loc, quantized in zip(locations, reader.read_rows([loc.row for loc in locations])):
                self._buffer.append(ShardRow(loc.chunk_id, quantized, embeddings[loc.row]))
                self._buffer_bytes += quantized.nbytes
                if self._buffer_bytes >= self.shard_bytes:
                    self._flush()
        self._dropping = [s["name"] for s in chosen]
        self.commit()
        after = len(state.meta.shard_rows())
        before_bytes = sum(s["bytes"] for s in shards)
        after_bytes = sum(s["bytes"] for s in state.meta.shard_rows())
        return CompactResult(len(shards), after, before_bytes - after_bytes)

    def _delete_dropped_shards(self) -> None:
        # Only after the commit: until then the old shards are the committed copy of the data.
        for name in self._dropping:
            self.state.forget_shard(name)
            try:
                os.unlink(self.state.directory / VECTORS_DIR / name)
            except FileNotFoundError:
                pass
        if self._dropping:
            fsync_dir(self.state.directory / VECTORS_DIR)
        self._dropping = []
