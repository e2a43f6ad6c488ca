"""``meta.sqlite``: documents, chunks, shards and commits, managed with sqlite-utils.

SQLite is the store's single source of truth. A commit is ONE transaction: it names the new shards,
inserts documents and chunks, deletes removed ones and bumps ``generation``. Whatever the transaction
does not reference (a shard written just before a crash, a FAISS file of an older generation) is either
garbage or a cache, never state.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import sqlite_utils

from ragcompress.store.errors import StoreFormatError
from ragcompress.store.shards import ShardInfo

META_NAME = "meta.sqlite"
SCHEMA_VERSION = 1


@dataclass
class PendingCommit:
    """Everything one ``commit()`` changes, applied in a single transaction."""

    shards: list[ShardInfo] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    removed_documents: list[str] = field(default_factory=list)
    # compaction: chunk_id -> (shard, row, vec_offset), and the shards it empties
    relocations: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    dropped_shards: list[str] = field(default_factory=list)
    next_chunk_id: int = 0

    def empty(self) -> bool:
        return not (self.shards or self.documents or self.removed_documents or self.dropped_shards)


@dataclass(frozen=True)
class ChunkLocation:
    chunk_id: int
    shard: str
    row: int
    vec_offset: int
    n_vectors: int


class MetaDB:
    """A thin typed layer over the SQLite file; every write goes through ``apply``."""

    def __init__(self, path: Path, readonly: bool) -> None:
        self.path = path
        if not path.exists():
            raise StoreFormatError(f"{path.parent} is not a ragcompress store (no {META_NAME})")
        if readonly:
            # A URI, so the path must be quoted ("?" or "#" in a directory name would cut it short).
            conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        else:
            conn = sqlite3.connect(str(path))
        self.db = sqlite_utils.Database(conn)
        try:
            if not readonly:
                # FULL: a commit that returned is on disk, not only in the OS cache.
                self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        except sqlite3.DatabaseError as error:
            conn.close()
            raise StoreFormatError(f"{path} is not readable store metadata: {error}") from None

    @classmethod
    def create(cls, path: Path) -> MetaDB:
        db = sqlite_utils.Database(path)
        db["documents"].create(
            {
                "doc_id": str,
                "path": str,
                "content_hash": str,
                "n_chunks": int,
                "n_tokens": int,
                "metadata": str,
                "status": str,
                "generation": int,
            },
            pk="doc_id",
        )
        db["chunks"].create(
            {
                "chunk_id": int,
                "doc_id": str,
                "ordinal": int,
                "text": str,
                "char_start": int,
                "char_end": int,
                "n_tokens": int,
                "n_vectors": int,
                "shard": str,
                "row": int,
                "vec_offset": int,
            },
            pk="chunk_id",
        )
        db["chunks"].create_index(["doc_id", "ordinal"], unique=True)
        db["chunks"].create_index(["shard"])
        db["shards"].create(
            {
                "name": str,
                "sha256": str,
                "rows": int,
                "n_vectors": int,
                "bytes": int,
                "dtype": str,
                "committed": int,
            },
            pk="name",
        )
        db["meta"].create({"key": str, "value": str}, pk="key")
        db["commits"].create(
            {
                "generation": int,
                "committed_at": str,
                "documents_added": int,
                "documents_removed": int,
                "chunks_added": int,
                "shards_added": int,
                "shards_dropped": int,
            },
            pk="generation",
        )
        db["meta"].insert_all(
            [
                {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                {"key": "generation", "value": "0"},
                {"key": "next_chunk_id", "value": "0"},
            ]
        )
        # WAL: readers keep reading the last committed state while a writer commits.
        db.enable_wal()
        db.close()
        return cls(path, readonly=False)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run several reads against one committed state (a read transaction; WAL keeps it stable)."""
        if self.db.conn.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    # ---- reads -------------------------------------------------------------------------------------
    def _meta_int(self, key: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return int(row[0])

    def generation(self) -> int:
        return self._meta_int("generation")

    def next_chunk_id(self) -> int:
        return self._meta_int("next_chunk_id")

    def live_chunk_ids(self) -> np.ndarray:
        rows = self.db.execute("SELECT chunk_id FROM chunks ORDER BY chunk_id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def locations(self, chunk_ids: Iterable[int] | None = None) -> list[ChunkLocation]:
        sql = "SELECT chunk_id, shard, row, vec_offset, n_vectors FROM chunks"
        if chunk_ids is None:
            rows = self.db.execute(sql + " ORDER BY chunk_id").fetchall()
        else:
            rows = self._select_in(sql, "chunk_id", list(chunk_ids))
        return [ChunkLocation(*row) for row in rows]

    def chunk_rows(self, chunk_ids: list[int]) -> list[dict[str, Any]]:
        sql = "SELECT * FROM chunks"
        return [dict(row) for row in self._select_in(sql, "chunk_id", chunk_ids, as_dict=True)]

    def document_rows(self, doc_id: str | None = None) -> list[dict[str, Any]]:
        where, args = ("doc_id = ?", [doc_id]) if doc_id is not None else (None, None)
        rows = list(self.db["documents"].rows_where(where, args, order_by="doc_id"))
        for row in rows:
            row["metadata"] = json.loads(row["metadata"] or "{}")
        return rows

    def chunk_ids_of(self, doc_ids: list[str]) -> list[int]:
        rows = self._select_in("SELECT chunk_id FROM chunks", "doc_id", doc_ids)
        return [r[0] for r in rows]

    def shard_rows(self) -> list[dict[str, Any]]:
        return list(self.db["shards"].rows_where(order_by="name"))

    def live_rows_per_shard(self) -> dict[str, int]:
        rows = self.db.execute("SELECT shard, COUNT(*) FROM chunks GROUP BY shard").fetchall()
        return {name: count for name, count in rows}

    def totals(self) -> dict[str, int]:
        documents = self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks, tokens, vectors = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(n_tokens), 0), COALESCE(SUM(n_vectors), 0) FROM chunks"
        ).fetchone()
        return {"documents": documents, "chunks": chunks, "tokens": tokens, "vectors": vectors}

    def _select_in(self, sql: str, column: str, values: list, as_dict: bool = False) -> list:
        # SQLite caps bound parameters; go in slices so a big id list still works.
        out: list = []
        cursor_factory = sqlite3.Row if as_dict else None
        for start in range(0, len(values), 500):
            part = values[start : start + 500]
            marks = ",".join("?" * len(part))
            cursor = self.db.conn.cursor()
            cursor.row_factory = cursor_factory
            out.extend(cursor.execute(f"{sql} WHERE {column} IN ({marks})", part).fetchall())
        return out

    # ---- the one write -----------------------------------------------------------------------------
    def apply(self, pending: PendingCommit) -> int:
        """Apply ``pending`` in one transaction and return the new generation."""
        with self.db.atomic():
            generation = self.generation() + 1
            for start in range(0, len(pending.removed_documents), 500):
                part = pending.removed_documents[start : start + 500]
                marks = ",".join("?" * len(part))
                self.db.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", part)
                self.db.execute(f"DELETE FROM documents WHERE doc_id IN ({marks})", part)
            self.db["shards"].insert_all(
                [{**shard.__dict__, "committed": generation} for shard in pending.shards]
            )
            # replace: a partial document's row is rewritten with its new totals each time it grows; the
            # writer refuses every other re-insert (add_document without replace=True) before this point.
            self.db["documents"].insert_all(
                [
                    {**doc, "metadata": json.dumps(doc["metadata"]), "generation": generation}
                    for doc in pending.documents
                ],
                replace=True,
            )
            self.db["chunks"].insert_all(pending.chunks)
            for chunk_id, (shard, row, vec_offset) in pending.relocations.items():
                self.db.execute(
                    "UPDATE chunks SET shard = ?, row = ?, vec_offset = ? WHERE chunk_id = ?",
                    [shard, row, vec_offset, chunk_id],
                )
            for name in pending.dropped_shards:
                self.db.execute("DELETE FROM shards WHERE name = ?", [name])
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", [str(generation)])
            self.db.execute(
                "UPDATE meta SET value = ? WHERE key = 'next_chunk_id'",
                [str(max(pending.next_chunk_id, self.next_chunk_id()))],
            )
            self.db["commits"].insert(
                {
                    "generation": generation,
                    "committed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "documents_added": len(pending.documents),
                    "documents_removed": len(pending.removed_documents),
                    "chunks_added": len(pending.chunks),
                    "shards_added": len(pending.shards),
                    "shards_dropped": len(pending.dropped_shards),
                }
            )
        return generation
