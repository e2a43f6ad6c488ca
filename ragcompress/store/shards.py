"""Vector shards: immutable safetensors files under ``vectors/``, each holding many chunks.

Layout of one shard (``rows`` chunks, ``V`` summary vectors in all):
    vectors     [V, hidden]   storage dtype (fp16 / bf16 / int8 / float8_e4m3fn)
    scales      [V]           fp32 or fp16, only for int8 / fp8 (one scale per vector)
    offsets     [rows + 1]    int64; chunk ``r`` owns ``vectors[offsets[r]:offsets[r+1]]``
    chunk_ids   [rows]        int64; the chunk (and FAISS id) of each row, so a shard describes itself
    embeddings  [rows, dim]   float32 retrieval embeddings, the source FAISS is always rebuilt from
Concatenating variable-length chunks behind an offsets array lets a chunk hold κ vectors or κ·steps of
them without padding. A shard is written once (temp + fsync + rename) and never modified; the SQLite
``shards`` table records its sha256, and a shard that table does not name is garbage from a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from ragcompress.store.errors import StoreCorruptError
from ragcompress.store.fsutil import atomic_write_bytes, sha256_bytes, sha256_file
from ragcompress.store.quantize import QuantizedVectors

VECTORS_DIR = "vectors"
SHARD_SUFFIX = ".safetensors"
SHARD_FORMAT = "ragcompress-shard-1"


@dataclass(frozen=True)
class ShardInfo:
    """One written shard, as recorded in the ``shards`` table at commit."""

    name: str
    sha256: str
    rows: int
    n_vectors: int
    bytes: int
    dtype: str


@dataclass
class ShardRow:
    """One chunk waiting to be written into a shard."""

    chunk_id: int
    vectors: QuantizedVectors
    embedding: np.ndarray


def shard_name(generation: int, sequence: int) -> str:
    # Named after the generation that will commit it: unique, and sorted in commit order.
    return f"g{generation:08d}-{sequence:04d}{SHARD_SUFFIX}"


def build_shard(rows: list[ShardRow], dtype: str) -> bytes:
    """Serialize ``rows`` into one safetensors payload (pure: nothing touches the disk)."""
    if not rows:
        raise ValueError("a shard needs at least one row")
    lengths = [len(row.vectors) for row in rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tensors = {
        "vectors": torch.cat([row.vectors.values for row in rows]),
        "offsets": torch.from_numpy(offsets),
        "chunk_ids": torch.tensor([row.chunk_id for row in rows], dtype=torch.int64),
        "embeddings": torch.from_numpy(np.stack([row.embedding for row in rows]).astype(np.float32)),
    }
    if rows[0].vectors.scales is not None:
        tensors["scales"] = torch.cat([row.vectors.scales for row in rows])
    metadata = {"format": SHARD_FORMAT, "vector_dtype": dtype, "rows": str(len(rows))}
    return save(tensors, metadata=metadata)


def write_shard(directory: Path, name: str, rows: list[ShardRow], dtype: str) -> ShardInfo:
    payload = build_shard(rows, dtype)
    atomic_write_bytes(directory / name, payload)
    n_vectors = sum(len(row.vectors) for row in rows)
    return ShardInfo(name, sha256_bytes(payload), len(rows), n_vectors, len(payload), dtype)


class ShardReader:
    """Read access to one committed shard, verified against its recorded sha256 when opened."""

    def __init__(self, path: Path, expected_sha256: str | None, dtype: str) -> None:
        self.path = path
        self.dtype = dtype
        missing = f"shard {path} is missing; run `ragcompress index` with --rebuild"
        if not path.exists():
            raise StoreCorruptError(missing)
        if expected_sha256 is not None:
            try:
                actual = sha256_file(path)
            except FileNotFoundError:  # deleted since exists() by a compaction: read_consistent retries
                raise StoreCorruptError(missing) from None
            if actual != expected_sha256:
                raise StoreCorruptError(
                    f"shard {path} is corrupted (sha256 {actual[:16]}… but the store recorded "
                    f"{expected_sha256[:16]}…); restore the file or rebuild the index"
                )
        try:
            self._file = safe_open(str(path), framework="pt")
            self._keys = set(self._file.keys())
            self.offsets = self._file.get_tensor("offsets").numpy()
        # RuntimeError: torch maps the file by its path again after safetensors opened it, so a compaction
        # that deletes it in between surfaces as torch's "unable to open file"; read_consistent retries.
        except (SafetensorError, OSError, KeyError, RuntimeError) as error:
            raise StoreCorruptError(f"shard {path} is unreadable: {error}") from None
        self.has_scales = "scales" in self._keys

    @property
    def rows(self) -> int:
        return len(self.offsets) - 1

    def chunk_ids(self) -> np.ndarray:
        return self._tensor("chunk_ids").numpy()

    def embeddings(self) -> np.ndarray:
        return self._tensor("embeddings").numpy()

    def vectors_info(self) -> tuple[int, int, str]:
        """(number of vectors, hidden size, safetensors dtype name) of the ``vectors`` tensor."""
        vectors = self._file.get_slice("vectors")
        n_vectors, hidden = vectors.get_shape()
        return int(n_vectors), int(hidden), vectors.get_dtype()

    def row_span(self, row: int) -> tuple[int, int]:
        """``(start, stop)``: where the vectors of ``row`` lie in the ``vectors`` tensor."""
        if not 0 <= row < self.rows:
            raise StoreCorruptError(f"shard {self.path} has {self.rows} rows, asked for row {row}")
        return int(self.offsets[row]), int(self.offsets[row + 1])

    def read_rows(self, rows: list[int]) -> list[QuantizedVectors]:
        """The stored vectors of the given rows, sliced lazily from the memory-mapped file."""
        vectors = self._file.get_slice("vectors")
        scales = self._file.get_slice("scales") if self.has_scales else None
        out = []
        for row in rows:
            start, stop = self.row_span(row)
            out.append(
                QuantizedVectors(
                    vectors[start:stop], None if scales is None else scales[start:stop], self.dtype
                )
            )
        return out

    def all_vectors(self) -> QuantizedVectors:
        """Every row's vectors at once, ``[n_vectors, hidden]`` in row order (``offsets`` splits them)."""
        scales = self._tensor("scales") if self.has_scales else None
        return QuantizedVectors(self._tensor("vectors"), scales, self.dtype)

    def metadata(self) -> dict[str, str]:
        return self._file.metadata() or {}

    def _tensor(self, key: str) -> torch.Tensor:
        try:
            return self._file.get_tensor(key)
        except (SafetensorError, KeyError) as error:
            raise StoreCorruptError(f"shard {self.path} lacks tensor {key!r}: {error}") from None
