"""The default engine: one ``ChunkWorker`` in this process, batches processed one after another."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from indexing.engines.base import (
    CompressorSource,
    EmbedderSource,
    Engine,
    ModelsInfo,
    StageCallback,
    WorkBatch,
    WorkResult,
)
from indexing.engines.worker import ChunkWorker, resolve_spec


class LocalEngine(Engine):
    """In-process: the models live here, on ``device`` (a GPU when present)."""

    name = "local"

    def __init__(
        self, compressor: CompressorSource = None, embedder: EmbedderSource = None, device: str | None = None
    ) -> None:
        self.compressor = resolve_spec(compressor)
        self.embedder = resolve_spec(embedder)
        self.device = device
        self.worker: ChunkWorker | None = None

    def start(self) -> ModelsInfo:
        if self.worker is None:
            self.worker = ChunkWorker(self.compressor, self.embedder, self.device)
        return self.worker.describe()

    def map(
        self, batches: Iterable[WorkBatch], on_stage: StageCallback | None = None
    ) -> Iterator[WorkResult]:
        if self.worker is None:
            self.start()
        for batch in batches:
            yield self.worker.run(batch, on_stage)

    def close(self) -> None:
        self.worker = None
