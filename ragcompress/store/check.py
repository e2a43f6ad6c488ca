"""``check_store``: verify a store directory against its own records, without changing anything.

A FAISS index one generation behind the metadata is not reported: it is what a crash between the
SQLite commit and the index rewrite leaves, every open rebuilds it from the shards, and the next writer
saves the rebuilt one. Shard files no commit refers to are likewise crash leftovers, not damage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ragcompress.store.errors import StoreError
from ragcompress.store.faiss_index import FAISS_NAME, VectorIndex
from ragcompress.store.fsutil import sha256_file
from ragcompress.store.manifest import Manifest, read_manifest
from ragcompress.store.meta import META_NAME, MetaDB
from ragcompress.store.quantize import SAFETENSORS_DTYPES, SCALED
from ragcompress.store.shards import VECTORS_DIR, ShardReader


def check_store(directory: Path) -> list[str]:
    """Every problem found, one line each; an empty list means the store is healthy."""
    try:
        manifest = read_manifest(directory)
        meta = MetaDB(Path(directory) / META_NAME, readonly=True)
    except StoreError as error:
        return [str(error)]
    try:
        problems = _check_shards(directory, manifest, meta)
        problems += _check_documents(meta)
        problems += _check_index(directory, manifest, meta)
        problems += _check_counts(manifest, meta)
        return problems
    finally:
        meta.close()


def missing_shards(directory: Path, meta: MetaDB) -> list[str]:
    """The committed shards that are missing or not the size they were written at: a stat per shard, what
    a writer checks before it adds to a store (``check_store`` also reads every byte)."""
    problems = []
    for row in meta.shard_rows():
        path = Path(directory) / VECTORS_DIR / row["name"]
        size = path.stat().st_size if path.is_file() else None
        if size is None:
            problems.append(f"shard {path} is missing")
        elif size != row["bytes"]:
            problems.append(f"shard {path} is corrupted: {size} bytes, not the {row['bytes']} written")
    return problems


def _check_shards(directory: Path, manifest: Manifest, meta: MetaDB) -> list[str]:
    problems = []
    by_shard: dict[str, list] = {}
    for loc in meta.locations():
        by_shard.setdefault(loc.shard, []).append(loc)
    listed = {row["name"]: row for row in meta.shard_rows()}
    for name in sorted(set(by_shard) - set(listed)):
        problems.append(
            f"{len(by_shard[name])} chunk(s) refer to shard {name}, which meta.sqlite does not list"
        )
    for name, row in listed.items():
        path = Path(directory) / VECTORS_DIR / name
        if not path.is_file():
            problems.append(f"shard {path} is missing")
            continue
        actual = sha256_file(path)
        if actual != row["sha256"]:
            problems.append(
                f"shard {path} is corrupted: sha256 {actual[:16]}… != recorded {row['sha256'][:16]}…"
            )
            continue
        try:
            problems += _check_one_shard(ShardReader(path, None, manifest.vector_dtype), row, manifest)
            problems += _check_locations(
                ShardReader(path, None, manifest.vector_dtype), by_shard.get(name, [])
            )
        except StoreError as error:
            problems.append(str(error))
    return problems


def _check_one_shard(reader: ShardReader, row: dict, manifest: Manifest) -> list[str]:
    problems = []
    where = f"shard {reader.path}"
    n_vectors, hidden, stored_dtype = reader.vectors_info()
    if reader.rows != row["rows"] or n_vectors != row["n_vectors"]:
        problems.append(
            f"{where} holds {reader.rows} rows/{n_vectors} vectors, meta.sqlite says {row['rows']}/{row['n_vectors']}"
        )
    if stored_dtype != SAFETENSORS_DTYPES[manifest.vector_dtype] or row["dtype"] != manifest.vector_dtype:
        problems.append(f"{where} stores {stored_dtype}, the manifest says {manifest.vector_dtype}")
    if hidden != manifest.compressor.hidden_size:
        problems.append(
            f"{where} has hidden size {hidden}, the manifest says {manifest.compressor.hidden_size}"
        )
    offsets = reader.offsets
    if offsets[0] != 0 or offsets[-1] != n_vectors or np.any(np.diff(offsets) < 0):
        problems.append(f"{where} has inconsistent offsets")
    has_scales = reader.has_scales
    if has_scales != (manifest.vector_dtype in SCALED):
        problems.append(
            f"{where} {'has' if has_scales else 'lacks'} per-vector scales for {manifest.vector_dtype}"
        )
    embeddings = reader.embeddings()
    if embeddings.shape != (reader.rows, manifest.embedder.dim):
        problems.append(f"{where} embeddings have shape {embeddings.shape}")
    return problems


def _check_locations(reader: ShardReader, locations: list) -> list[str]:
    chunk_ids, offsets = reader.chunk_ids(), reader.offsets
    bad = [
        loc.chunk_id
        for loc in locations
        if not 0 <= loc.row < reader.rows
        or chunk_ids[loc.row] != loc.chunk_id
        or offsets[loc.row] != loc.vec_offset
        or offsets[loc.row + 1] - offsets[loc.row] != loc.n_vectors
    ]
    if bad:
        return [f"shard {reader.path} disagrees with meta.sqlite about chunk(s) {bad[:10]}"]
    return []


def _check_documents(meta: MetaDB) -> list[str]:
    problems = []
    rows = meta.db.execute(
        "SELECT d.doc_id, d.n_chunks, d.n_tokens, COUNT(c.chunk_id), COALESCE(SUM(c.n_tokens), 0), "
        "COALESCE(MIN(c.ordinal), 0), COALESCE(MAX(c.ordinal), -1) "
        "FROM documents d LEFT JOIN chunks c ON c.doc_id = d.doc_id GROUP BY d.doc_id"
    ).fetchall()
    for doc_id, n_chunks, n_tokens, count, tokens, low, high in rows:
        if n_chunks != count or n_tokens != tokens or low != 0 or high != count - 1:
            problems.append(
                f"document {doc_id!r} records {n_chunks} chunks/{n_tokens} tokens but has {count}/{tokens} "
                f"(ordinals {low}..{high})"
            )
    orphans = meta.db.execute(
        "SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)"
    ).fetchone()[0]
    if orphans:
        problems.append(f"{orphans} chunk(s) belong to no document")
    live = meta.live_chunk_ids()
    if len(live) and live[-1] >= meta.next_chunk_id():
        problems.append(f"chunk id {live[-1]} is not below next_chunk_id {meta.next_chunk_id()}")
    return problems


def _check_index(directory: Path, manifest: Manifest, meta: MetaDB) -> list[str]:
    path = Path(directory) / FAISS_NAME
    if not path.is_file():
        return [f"{path} is missing (the next writer rebuilds it from the shards)"]
    try:
        index = VectorIndex.load(path, manifest.faiss, manifest.embedder.dim)
    except (RuntimeError, OSError) as error:
        return [f"{path} is unreadable ({error}); the next writer rebuilds it from the shards"]
    ids = index.ids()
    if len(ids) != index.ntotal or len(np.unique(ids)) != len(ids):
        return [f"{path} holds duplicate ids"]
    # Behind by a crash: ids only from committed generations. Anything else cannot come from our writer.
    if len(ids) and ids[-1] >= meta.next_chunk_id():
        return [f"{path} holds ids that were never committed"]
    return []


def _check_counts(manifest: Manifest, meta: MetaDB) -> list[str]:
    counts, generation = manifest.counts, meta.generation()
    if counts.generation > generation:
        return [
            f"manifest counts are for generation {counts.generation}, ahead of the metadata's {generation}"
        ]
    if counts.generation == generation:
        totals = meta.totals()
        recorded = {k: getattr(counts, k) for k in totals}
        if recorded != totals:
            return [f"manifest counts {recorded} differ from the metadata {totals}"]
    return []
