"""The Ray engine (``--engine ray``, extra ``ragcompress[ray]``): one model-holding actor per GPU.

Each actor loads the compressor and the embedder once (one GPU each when the cluster has GPUs, CPU
threads otherwise) and runs the same ``ChunkWorker.run`` step as the local engine. The driver keeps a
few batches in flight per actor and yields the results strictly in submission order; it alone writes
and commits to the store, so a Ray-built store holds the same chunks, in the same order, with the same
chunk ids as a locally built one. Model tensors never pass through the driver, only results do.

Connecting: an already initialised Ray (``ray.init(...)`` by the caller) is used as is; otherwise the
engine calls ``ray.init(address=$RAY_ADDRESS or a new local cluster)`` and shuts it down when done.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from indexing.engines.base import (
    CompressorSource,
    EmbedderSource,
    Engine,
    EngineError,
    ModelsInfo,
    StageCallback,
    WorkBatch,
    WorkResult,
)
from indexing.engines.worker import ChunkWorker, resolve_spec
from ragcompress.compressor import Compressor
from ragcompress.embedder import Embedder

# Batches queued per actor: enough to hide the driver's chunking and the transfer of results, small
# enough that a killed run loses little work and memory stays bounded.
IN_FLIGHT_PER_ACTOR = 2


class _RayChunkWorker:
    """The actor body: a ChunkWorker that lives in a Ray worker process."""

    def __init__(self, compressor, embedder, device, threads) -> None:
        self.worker = ChunkWorker(compressor, embedder, device, threads)

    def describe(self) -> ModelsInfo:
        return self.worker.describe()

    def run(self, batch: WorkBatch) -> WorkResult:
        return self.worker.run(batch)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise EngineError("the ray engine needs Ray: pip install 'ragcompress[ray]'") from None
    return ray


def _one_line(error: BaseException) -> EngineError:
    """The original error inside Ray's wrappers (task error, actor died in __init__), as one line."""
    seen = error
    while getattr(seen, "cause", None) is not None and isinstance(seen.cause, BaseException):
        seen = seen.cause
    if isinstance(seen, EngineError):
        return EngineError(str(seen).strip().splitlines()[-1])
    lines = [line for line in str(seen).strip().splitlines() if line.strip()]
    return EngineError(f"ray worker failed: {lines[-1] if lines else type(seen).__name__}")


class RayEngine(Engine):
    name = "ray"

    def __init__(
        self,
        compressor: CompressorSource = None,
        embedder: EmbedderSource = None,
        device: str | None = None,
        workers: int | None = None,
        address: str | None = None,
    ) -> None:
        for what, source in (("compressor", compressor), ("embedder", embedder)):
            if isinstance(source, (tuple, Compressor, Embedder)):
                # Shipping a loaded model to every actor would copy its weights through the object
                # store; a name or path lets each actor load its own copy where it runs.
                raise EngineError(
                    f"the ray engine loads models in its actors: pass the {what} as a name or path"
                )
        self.compressor = resolve_spec(compressor)
        self.embedder = resolve_spec(embedder)
        self.device = device
        self.workers = workers
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.actors: list = []
        self._started_ray = False
        self._info: ModelsInfo | None = None

    def start(self) -> ModelsInfo:
        if self._info is not None:
            return self._info
        ray = _import_ray()
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            self._started_ray = True
        resources = ray.cluster_resources()
        gpus = 0 if self.device == "cpu" else int(resources.get("GPU", 0))
        count = self.workers or max(1, gpus)
        if gpus and count > gpus:
            raise EngineError(f"asked for {count} ray workers but the cluster has {gpus} GPUs")
        cpus = max(1, int(resources.get("CPU", 1)) // count)
        # Inside an actor with num_gpus=1, Ray makes "its" GPU the only visible one: "cuda" is it.
        device = "cuda" if gpus else "cpu"
        actor_class = ray.remote(_RayChunkWorker).options(num_cpus=cpus, num_gpus=1 if gpus else 0)
        compressor = str(self.compressor) if isinstance(self.compressor, Path) else self.compressor
        embedder = str(self.embedder) if isinstance(self.embedder, Path) else self.embedder
        self.actors = [actor_class.remote(compressor, embedder, device, cpus) for _ in range(count)]
        try:
            infos = ray.get([actor.describe.remote() for actor in self.actors])
        except ray.exceptions.RayError as error:
            self.close()
            raise _one_line(error) from None
        hashes = {(info.compressor.weights_hash, info.embedder_id) for info in infos}
        if len(hashes) > 1:  # e.g. nodes with different files at the same path
            self.close()
            raise EngineError(f"ray workers loaded different models: {sorted(hashes)}")
        self._info = infos[0]
        return self._info

    def map(
        self, batches: Iterable[WorkBatch], on_stage: StageCallback | None = None
    ) -> Iterator[WorkResult]:
        ray = _import_ray()
        if self._info is None:
            self.start()
        load = [0] * len(self.actors)
        in_flight: deque[tuple[int, int, object]] = deque()  # (actor index, batch size, result ref)
        source = iter(batches)
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < IN_FLIGHT_PER_ACTOR * len(self.actors):
                batch = next(source, None)
                if batch is None:
                    exhausted = True
                    break
                target = min(range(len(self.actors)), key=load.__getitem__)
                load[target] += 1
                in_flight.append((target, len(batch), self.actors[target].run.remote(batch)))
            if not in_flight:
                return
            target, size, ref = in_flight.popleft()
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as error:
                raise _one_line(error) from None
            load[target] -= 1
            if on_stage is not None:
                on_stage("embedded", size)
                on_stage("compressed", size)
            yield result

    def close(self) -> None:
        if not self.actors and not self._started_ray:
            return
        ray = _import_ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        self._info = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
