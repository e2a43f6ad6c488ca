"""Small deterministic corpora for the store tests: random summary vectors, random unit embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ragcompress.store import ChunkInput, CompressorInfo, EmbedderInfo, FaissInfo, Store, new_manifest

HIDDEN = 32
DIM = 16
KAPPA = 4


def make_manifest(dtype: str = "fp16", kind: str = "flat", scale_dtype: str = "fp32", **faiss_options):
    return new_manifest(
        compressor=CompressorInfo("tiny-compressor", "0123abcd", KAPPA, HIDDEN),
        embedder=EmbedderInfo("tiny-embedder", DIM),
        vector_dtype=dtype,
        scale_dtype=scale_dtype,
        faiss=FaissInfo(kind=kind, **faiss_options),
    )


@dataclass
class Doc:
    doc_id: str
    path: str
    content_hash: str
    chunks: list[ChunkInput]
    embeddings: np.ndarray
    vectors: list[torch.Tensor]
    metadata: dict


def make_doc(i: int, version: int = 0, hidden: int = HIDDEN, dim: int = DIM) -> Doc:
    """Document ``i``: 1–3 chunks, κ or 2κ vectors each (one or two compression steps)."""
    rng = np.random.default_rng([i, version])
    gen = torch.Generator().manual_seed(i * 1000 + version)
    n_chunks = 1 + i % 3
    chunks, start = [], 0
    for ordinal in range(n_chunks):
        text = f"document {i} v{version} chunk {ordinal} " + "x" * int(rng.integers(5, 40))
        chunks.append(ChunkInput(text, start, start + len(text), int(rng.integers(20, 200))))
        start += len(text) + 1
    embeddings = rng.normal(size=(n_chunks, dim)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    vectors = [
        # fp16-representable values, so fp16 storage must give them back bit for bit
        torch.randn(KAPPA * (1 + (i + c) % 2), hidden, generator=gen).to(torch.float16).float()
        for c in range(n_chunks)
    ]
    return Doc(
        f"doc{i:03d}", f"corpus/doc{i:03d}.txt", f"hash-{i}-{version}", chunks, embeddings, vectors, {"i": i}
    )


def add(writer, doc: Doc, replace: bool = False) -> list[int]:
    return writer.add_document(
        doc.doc_id,
        doc.path,
        doc.content_hash,
        doc.chunks,
        doc.embeddings,
        doc.vectors,
        metadata=doc.metadata,
        replace=replace,
    )


def build(path: Path, docs: list[Doc], dtype: str = "int8", kind: str = "flat") -> Store:
    store = Store.create(path, make_manifest(dtype, kind))
    with store.begin_update() as writer:
        for doc in docs:
            add(writer, doc)
    return store


QUERIES = np.random.default_rng(99).normal(size=(6, DIM)).astype(np.float32)


def snapshot(store: Store) -> dict:
    """Everything a user can observe, keyed by (doc_id, ordinal) so chunk ids don't matter."""
    docs = [
        (d.doc_id, d.path, d.content_hash, d.n_chunks, d.n_tokens, d.metadata, d.status)
        for d in store.documents()
    ]
    ids = [int(i) for i in store.chunk_ids()]
    chunks = store.get_chunks(ids)
    key = {c.chunk_id: (c.doc_id, c.ordinal) for c in chunks}
    rows = {key[c.chunk_id]: (c.text, c.char_start, c.char_end, c.n_tokens, c.n_vectors) for c in chunks}
    vectors = {key[i]: v for i, v in zip(ids, store.get_vectors(ids))}
    hits = [[(key[h.chunk_id], round(h.score, 5)) for h in row] for row in store.search_batch(QUERIES, 5)]
    return {"documents": docs, "chunks": rows, "vectors": vectors, "search": hits}


def assert_same(a: dict, b: dict) -> None:
    assert a["documents"] == b["documents"]
    assert a["chunks"] == b["chunks"]
    assert a["vectors"].keys() == b["vectors"].keys()
    for k in a["vectors"]:
        assert torch.equal(a["vectors"][k], b["vectors"][k]), k
    assert a["search"] == b["search"]
