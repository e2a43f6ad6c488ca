"""How many bytes an index takes, counted from what it has committed, so every report gives the same figure.

Counting every file in the folder moves with things that are not the index: SQLite's ``-wal`` and ``-shm``
files (filled by a writer, emptied at a checkpoint, so `ragcompress index` and a later `ragcompress info`
disagreed on the same index), the writer's lock, a rebuild's staging folder. This counts what a reader of
the committed generation reads: manifest.json, the SQLite database's pages (``page_count × page_size``,
the same whether or not they were checkpointed), faiss.index and the committed vector shards.
"""

from __future__ import annotations

from ragcompress.store.faiss_index import FAISS_NAME
from ragcompress.store.manifest import MANIFEST_NAME
from ragcompress.store.state import OpenStore


def committed_disk_bytes(state: OpenStore) -> int:
    """Bytes on disk of the committed generation of the store ``state`` reads."""
    meta = state.meta
    with meta.snapshot():
        pages = meta.db.execute("PRAGMA page_count").fetchone()[0]
        page_size = meta.db.execute("PRAGMA page_size").fetchone()[0]
        shards = sum(int(row["bytes"]) for row in meta.shard_rows())
    files = 0
    for name in (MANIFEST_NAME, FAISS_NAME):
        path = state.directory / name
        files += path.stat().st_size if path.is_file() else 0
    return pages * page_size + shards + files
