"""The records the store takes and returns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ChunkInput:
    """A chunk to add. Any object with these four attributes (e.g. the chunker's) is accepted too."""

    text: str
    char_start: int
    char_end: int
    n_tokens: int


@dataclass(frozen=True)
class Chunk:
    """A stored chunk: its text and where it came from."""

    chunk_id: int
    doc_id: str
    ordinal: int
    text: str
    char_start: int
    char_end: int
    n_tokens: int
    n_vectors: int


# A document's status: whole, or committed in pieces whose last piece is not in yet (a long document;
# see StoreWriter.add_document and indexing/write.py).
INDEXED = "indexed"
PARTIAL = "partial"


@dataclass(frozen=True)
class StoredDocument:
    """A document as the store holds it: where it came from, its content hash, its chunk and token counts
    and status. (The text read from a corpus is ``indexing.Document``.)"""

    doc_id: str
    path: str
    content_hash: str
    n_chunks: int
    n_tokens: int
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = INDEXED

    @property
    def partial(self) -> bool:
        """Committed in pieces, the last one not in yet: its row counts only the committed chunks."""
        return self.status == PARTIAL


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    score: float

    def __iter__(self) -> Iterator[Any]:
        # So ``for chunk_id, score in store.search(...)`` reads naturally.
        return iter((self.chunk_id, self.score))


@dataclass(frozen=True)
class StoreStats:
    """Sizes of a store. ``bytes_per_token`` counts the summary-vector payload (values + scales) per
    text token; ``disk_bytes_per_token`` counts the committed files (store/sizes.py)."""

    documents: int
    chunks: int
    tokens: int
    vectors: int
    vector_bytes: int
    disk_bytes: int
    bytes_per_token: float
    disk_bytes_per_token: float
    compressor: str
    embedder: str
    vector_dtype: str
    generation: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CompactResult:
    shards_before: int
    shards_after: int
    bytes_reclaimed: int
