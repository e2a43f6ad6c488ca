"""The FAISS index: a cache of the committed embeddings, keyed by chunk id.

It is never the source of truth: every embedding also lives in the shards, so the index can be rebuilt
whenever its id set differs from the committed chunks (a crash between the SQLite commit and the index
rewrite, a deleted or damaged file). Chunk ids are never reused, so "same id set" means "same index".

Kinds: "flat" (exact inner product, the default), "ivf" (IndexIVFFlat; trained once there are enough
vectors, flat until then) and "hnsw" (IndexHNSWFlat; it cannot delete, so removals rebuild it).

A search for a GPU caller (``search(..., device=...)``) runs on that GPU where it can
(``search_route``): a flat index as one matrix product and a top-k in torch over a copy of its vectors
kept on the device (``DeviceFlat``), which returns what the CPU search returns, and a trained IVF index
through GPU FAISS when the installed faiss has GPUs (a copy made on first use, with at most
``GPU_FAISS_TEMP_BYTES`` of FAISS scratch memory, since the model shares the GPU). Flat indexes keep the
torch path even with GPU FAISS: on an H100 it searched a million chunks 3–5 × faster than GPU FAISS's
flat index (1.4–1.6 × at 100,000), and was 0.07 ms behind it at 10,000
(benchmarks/results/flat_search-h100-faiss-gpu-final.json).
HNSW, and every search for a CPU caller, stay with FAISS on the CPU.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from ragcompress.store.fsutil import atomic_write_with
from ragcompress.store.manifest import FaissInfo


class _LazyFaiss:
    """``faiss``, imported on first use: the modeling, training and eval paths need no FAISS."""

    def __getattr__(self, name: str):
        import faiss as module

        return getattr(module, name)


faiss = _LazyFaiss()
FAISS_NAME = "faiss.index"
# Device types whose callers get flat searches on the device (tests add "cpu" to run that path).
DEVICE_SEARCH_TYPES = ("cuda",)
# A device copy may take at most this share of the device's free memory (the rest is the model's).
DEVICE_SEARCH_MEMORY_SHARE = 0.25
# Scores of at most this many bytes are computed at once (queries are split into blocks beyond it).
SCORE_BLOCK_BYTES = 256 << 20
# GPU FAISS: its largest k (and nprobe), and the scratch memory it may reserve per GPU (its default is
# 18 % of the GPU's memory, which the model needs).
GPU_FAISS_MAX_K = 2048
GPU_FAISS_TEMP_BYTES = 256 << 20
# FAISS wants ~39 training points per list; below 8 lists IVF buys nothing over a flat scan.
MIN_POINTS_PER_LIST = 39
MIN_LISTS = 8

log = logging.getLogger(__name__)


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows kept): what the "cosine" metric stores and searches with."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def ivf_lists_for(n: int) -> int:
    """nlist for ``n`` vectors: ~4·sqrt(n), limited by the training points available (0 = stay flat)."""
    nlist = min(int(4 * math.sqrt(n)), n // MIN_POINTS_PER_LIST)
    return nlist if nlist >= MIN_LISTS else 0


class VectorIndex:
    """One FAISS index plus the knowledge of how to update, search and persist it."""

    def __init__(self, info: FaissInfo, dim: int, index: faiss.Index) -> None:
        self.info = info
        self.dim = dim
        self.index = index
        self._gpu_index: tuple[int, faiss.Index] | None = None  # (GPU number, GPU FAISS's copy)
        self._on_device: DeviceFlat | None | bool = None  # False: refused until the index changes
        self._ivf_index: faiss.IndexIVF | None | bool = False  # False: not looked up yet
        self.last_route: str | None = None  # where the latest search ran, as search_route names it

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def build(cls, info: FaissInfo, dim: int, ids: np.ndarray, embeddings: np.ndarray) -> VectorIndex:
        """A fresh index of ``info.kind`` over the given vectors (IVF trains on them when it can)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32).reshape(len(ids), dim)
        nlist = ivf_lists_for(len(ids)) if info.kind == "ivf" else 0
        if nlist:
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(embeddings)
        elif info.kind == "hnsw":
            index = faiss.IndexIDMap2(faiss.IndexHNSWFlat(dim, info.hnsw_m, faiss.METRIC_INNER_PRODUCT))
        else:
            # IVF falls back to flat while there are too few vectors to train the coarse quantizer.
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        made = cls(info, dim, index)
        if len(ids):
            made.index.add_with_ids(embeddings, ids)
        return made

    @classmethod
    def load(cls, path: Path, info: FaissInfo, dim: int) -> VectorIndex:
        """Read ``faiss.index``; raises ``RuntimeError``/``OSError`` when unreadable (callers rebuild)."""
        index = faiss.read_index(str(path))
        if index.d != dim:
            raise RuntimeError(f"{path} has dimension {index.d}, the embedder has {dim}")
        return cls(info, dim, index)

    def save(self, path: Path) -> None:
        atomic_write_with(path, lambda tmp: faiss.write_index(self.index, tmp))

    # ---- introspection ------------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def _ivf(self) -> faiss.IndexIVF | None:
        if self._ivf_index is False:  # an index never changes kind: look once (a miss raises in FAISS)
            try:
                self._ivf_index = faiss.extract_index_ivf(self.index)
            except RuntimeError:
                self._ivf_index = None
        return self._ivf_index

    def ids(self) -> np.ndarray:
        """Every id in the index, sorted."""
        ivf = self._ivf()
        if ivf is None:
            ids = faiss.vector_to_array(self.index.id_map)
        else:
            lists = ivf.invlists
            parts = [
                faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                for i in range(ivf.nlist)
                if lists.list_size(i)
            ]
            ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return np.sort(ids.astype(np.int64))

    def needs_rebuild(self, n_live: int, removing: bool) -> bool:
        """True when incremental updates can't keep this index right or good."""
        if self.info.kind == "hnsw" and removing:
            return True  # HNSW graphs cannot delete nodes
        if self.info.kind == "ivf":
            ivf = self._ivf()
            current = 0 if ivf is None else ivf.nlist
            wanted = ivf_lists_for(n_live)
            # Retrain when the lists would be twice as many: clusters trained on a quarter of the data
            # no longer describe it. Shrinking below the training floor falls back to flat.
            return (wanted >= 2 * current and wanted > 0) or (current and not wanted)
        return False

    # ---- updates and search -------------------------------------------------------------------------
    def add(self, ids: np.ndarray, embeddings: np.ndarray) -> None:
        if len(ids):
            self._gpu_index = self._on_device = None
            self.index.add_with_ids(
                np.ascontiguousarray(embeddings, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)
            )

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self._gpu_index = self._on_device = None
            self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int, device=None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids ``[nq, k']`` with ``k' = min(k, ntotal)``; missing slots have id -1.

        ``device``: where the caller works; ``search_route`` says where that puts the search."""
        k = min(k, self.ntotal)
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.info.kind == "hnsw":
            faiss.downcast_index(self.index.index).hnsw.efSearch = max(self.info.ef_search, k)
        route = self.last_route = self.search_route(device, k)
        if route == "torch":
            return self._on_device.search(queries, k)
        return (self._gpu_index[1] if route == "faiss-gpu" else self.index).search(queries, k)

    def search_route(self, device=None, k: int = 10) -> str:
        """Where a search of ``k`` hits for a caller on ``device`` runs: "torch" (``DeviceFlat``: flat
        indexes, and IVF ones not yet trained), "faiss-gpu" (GPU FAISS on that GPU: trained IVF indexes)
        or "faiss-cpu" (CPU callers, HNSW, IVF without GPU FAISS or past its k, or a device copy that did
        not fit). Makes the device copy the route needs, if it is not there yet; ``search`` then uses it."""
        ivf = self._ivf()
        if ivf is not None:  # before any GPU copy: copying takes the CPU index's nprobe along
            ivf.nprobe = min(self.info.nprobe, ivf.nlist)
        if device is None:
            return "faiss-cpu"
        device = torch.device(device)
        if ivf is not None and device.type == "cuda" and k <= GPU_FAISS_MAX_K:
            if self._gpu_faiss(device) is not None:
                return "faiss-gpu"
        if self._device_flat(device) is not None:
            return "torch"
        return "faiss-cpu"

    def _gpu_faiss(self, device: torch.device) -> faiss.Index | None:
        """GPU FAISS's copy of this (trained IVF) index on ``device`` (made on first use), or None: no GPU
        FAISS, or a copy that failed (said once; not tried again until the index changes)."""
        if not gpu_faiss_installed():
            return None
        gpu = device.index if device.index is not None else torch.cuda.current_device()
        if self._gpu_index is not None and self._gpu_index[0] == gpu:
            return self._gpu_index[1]  # None: the copy failed, and the index has not changed since
        try:
            copy = faiss.index_cpu_to_gpu(gpu_faiss_resources(gpu), gpu, self.index)
        except (RuntimeError, AttributeError, MemoryError) as error:
            say_once(f"not searching with GPU FAISS: the index could not move to GPU {gpu}: {error}")
            copy = None
        self._gpu_index = (gpu, copy)
        return copy

    def _device_flat(self, device) -> DeviceFlat | None:
        """The copy of this flat index's vectors on ``device`` (made on first use), or None where it
        does not apply: another device type, an IVF or HNSW index, or too little free memory."""
        device = torch.device(device)
        if device.type not in DEVICE_SEARCH_TYPES or self.info.kind == "hnsw" or self._ivf() is not None:
            return None
        if self._on_device is False:
            return None
        if self._on_device is not None and self._on_device.device == device:
            return self._on_device
        self._on_device = False
        flat = faiss.downcast_index(self.index.index)
        need = self.ntotal * self.dim * 4
        free = free_bytes(device)
        if free is not None and need > DEVICE_SEARCH_MEMORY_SHARE * free:
            say_once(
                f"searching on the CPU: the index's {need / 2**20:.0f} MiB of vectors exceed "
                f"{DEVICE_SEARCH_MEMORY_SHARE:.0%} of {device}'s {free / 2**20:.0f} MiB free"
            )
            return None
        try:
            self._on_device = DeviceFlat(
                faiss.vector_to_array(self.index.id_map), flat.reconstruct_n(0, self.ntotal), device
            )
        except RuntimeError as error:  # torch.OutOfMemoryError included: the CPU search still works
            say_once(f"searching on the CPU: the index's vectors could not move to {device}: {error}")
            return None
        return self._on_device


class DeviceFlat:
    """A flat inner-product index on a torch device: its ids and fp32 vectors, searched by one matrix
    product and a top-k per block of queries. The scores are FAISS's up to float rounding (torch's default
    float32 matmul precision, "highest", keeps TF32 out of it), so the hits are the same but for near-ties.
    """

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, device) -> None:
        self.device = torch.device(device)
        self.ids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).to(self.device)
        self.vectors = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(self.device)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.ids)
        k = min(k, n)
        rows = max(1, SCORE_BLOCK_BYTES // (4 * max(n, 1)))
        on_device = torch.from_numpy(queries).to(self.device)
        scores, ids = [], []
        for block in on_device.split(rows):
            top = torch.topk(block @ self.vectors.T, k, dim=1)
            scores.append(top.values)
            ids.append(self.ids[top.indices])
        return torch.cat(scores).cpu().numpy(), torch.cat(ids).cpu().numpy()


def gpu_faiss_installed() -> bool:
    """Whether the installed faiss is a GPU build that sees a GPU (faiss-cpu has no get_num_gpus)."""
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


_GPU_RESOURCES: dict[int, object] = {}  # GPU number -> faiss.StandardGpuResources, kept for the process


def gpu_faiss_resources(gpu: int):
    """GPU FAISS's resources for one GPU, made once, its scratch memory capped at GPU_FAISS_TEMP_BYTES."""
    if gpu not in _GPU_RESOURCES:
        resources = faiss.StandardGpuResources()
        resources.setTempMemory(GPU_FAISS_TEMP_BYTES)
        _GPU_RESOURCES[gpu] = resources
    return _GPU_RESOURCES[gpu]


def free_bytes(device) -> int | None:
    """Memory free on ``device`` for new tensors (None: not known): what the driver has free plus what
    torch's caching allocator holds unused (a text prompt's activations, freed but still reserved)."""
    if device.type != "cuda":
        return None
    unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return torch.cuda.mem_get_info(device)[0] + unused


_SAID: set[str] = set()  # the messages say_once has logged


def say_once(message: str) -> None:
    if message not in _SAID:
        _SAID.add(message)
        log.warning(message)
