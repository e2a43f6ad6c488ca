"""Summary vectors kept on a GPU: each shard's vectors dequantized there once, then copied from there.

Reading a fused answer's vectors from the shards costs a host gather and one transfer per answer (about
10 ms for 16 questions × 10 chunks of a 7B model's 50 × 4,096 vectors). With the shards held on the
model's device in its dtype, the same read is one device copy of the chunks' rows. Shard files never
change once committed, so a shard is held under its name and sha256: a compaction's or a rebuild's new
shard is a new key, and shards no longer committed are dropped when the store follows the commit
(``OpenStore.refresh``).

The memory is bounded: shards are taken while they fit ``max_bytes`` (by default a quarter of the free
device memory when the first shard is loaded, the rest being the model's); a shard beyond it is read from
the host as before, and the log says so once.
"""

from __future__ import annotations

import torch

from ragcompress.store import faiss_index
from ragcompress.store.quantize import dequantize_many
from ragcompress.store.shards import ShardReader

# Device types whose readers keep vectors there (tests add "cpu" to run the same code).
DEVICE_VECTOR_TYPES = ("cuda",)


class DeviceVectors:
    """Whole shards' vectors ``[n_vectors, hidden]`` in ``dtype`` on ``device``, loaded on first use."""

    def __init__(self, device: torch.device | str, dtype: torch.dtype, max_bytes: int | None = None) -> None:
        self.device = _indexed(device)
        self.dtype = dtype
        self.max_bytes = max_bytes  # None: a share of the free memory, fixed at the first load
        self.shards: dict[tuple[str, str], torch.Tensor] = {}  # (name, sha256) → the shard's vectors
        self.declined: set[tuple[str, str]] = set()  # shards that did not fit: read from the host

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.shards.values())

    def serves(self, dtype: torch.dtype, device: torch.device | str | None) -> bool:
        """Whether a read in ``dtype`` on ``device`` can come from here."""
        return device is not None and _indexed(device) == self.device and dtype == self.dtype

    def shard(self, key: tuple[str, str], reader: ShardReader) -> torch.Tensor | None:
        """The vectors of the shard ``key`` (name, sha256) read by ``reader``, or None if it does not fit."""
        held = self.shards.get(key)
        if held is not None or key in self.declined:
            return held
        n_vectors, hidden, _ = reader.vectors_info()
        need = n_vectors * hidden * self.dtype.itemsize
        if self.max_bytes is None:
            free = faiss_index.free_bytes(self.device)
            share = faiss_index.DEVICE_SEARCH_MEMORY_SHARE
            self.max_bytes = int(share * free) if free is not None else 1 << 62
        if self.nbytes + need > self.max_bytes:
            self.declined.add(key)
            faiss_index.say_once(
                f"summary vectors beyond {self.max_bytes / 2**20:.1f} MiB stay on the host and move to "
                f"{self.device} per answer"
            )
            return None
        try:
            held = dequantize_many([reader.all_vectors()], self.dtype, self.device)[0]
        except RuntimeError as error:  # torch.OutOfMemoryError included: host reads still work
            self.declined.add(key)
            faiss_index.say_once(
                f"summary vectors stay on the host: shard {key[0]} could not move to {self.device}: {error}"
            )
            return None
        self.shards[key] = held
        return held

    def keep_only(self, committed: dict[str, str]) -> None:
        """Drop the shards that are no longer committed (``committed``: name → sha256)."""
        live = set(committed.items())
        for key in [k for k in self.shards if k not in live]:
            del self.shards[key]
        self.declined &= live


def _indexed(device: torch.device | str) -> torch.device:
    """``device`` with its index: "cuda" is the current CUDA device, so that it equals "cuda:0" there."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device
