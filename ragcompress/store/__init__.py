"""The on-disk index of a compressed corpus: manifest, SQLite metadata, FAISS and vector shards.

    store = Store.open_or_create("index/", manifest)
    with store.begin_update() as writer:
        writer.add_document(doc_id, path, content_hash, chunks, embeddings, vectors)
    hits = store.search(query_embedding, k=5)
    vectors = store.get_vectors([hit.chunk_id for hit in hits])

See docs/store-format.md for the format and the crash-safety argument.
"""

from ragcompress.store.check import check_store
from ragcompress.store.errors import (
    StoreChangedError,
    StoreCorruptError,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    StoreMismatchError,
    StoreRebuiltError,
)
from ragcompress.store.manifest import (
    ChunkingInfo,
    CompressorInfo,
    Counts,
    EmbedderInfo,
    FaissInfo,
    Manifest,
    new_manifest,
    read_manifest,
)
from ragcompress.store.quantize import (
    VECTOR_DTYPES,
    QuantizedVectors,
    bytes_per_text_token,
    bytes_per_vector,
    dequantize,
    quantize,
)
from ragcompress.store.records import (
    Chunk,
    ChunkInput,
    CompactResult,
    SearchHit,
    StoredDocument,
    StoreStats,
)
from ragcompress.store.store import Store
from ragcompress.store.writer import StoreWriter

__all__ = [
    "Chunk",
    "ChunkInput",
    "ChunkingInfo",
    "CompactResult",
    "CompressorInfo",
    "Counts",
    "EmbedderInfo",
    "FaissInfo",
    "Manifest",
    "QuantizedVectors",
    "SearchHit",
    "Store",
    "StoreChangedError",
    "StoreCorruptError",
    "StoreError",
    "StoreFormatError",
    "StoreLockedError",
    "StoreMismatchError",
    "StoreRebuiltError",
    "StoreStats",
    "StoredDocument",
    "StoreWriter",
    "VECTOR_DTYPES",
    "bytes_per_text_token",
    "check_store",
    "bytes_per_vector",
    "dequantize",
    "new_manifest",
    "quantize",
    "read_manifest",
]
