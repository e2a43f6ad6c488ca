"""``ChunkWorker``: one copy of the compressor and the embedder, and the batch step every engine runs.

The local engine holds one worker in-process; the Ray engine holds one per actor. Keeping the step in
one place is what makes the engines agree chunk for chunk.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from indexing.engines.base import (
    CompressorSource,
    EmbedderSource,
    EngineError,
    ModelsInfo,
    StageCallback,
    WorkBatch,
    WorkResult,
)
from ragcompress.compressor import Compressor, ModelLoadError
from ragcompress.embedder import Embedder


def resolve_spec(spec: CompressorSource | EmbedderSource) -> CompressorSource | EmbedderSource:
    """Existing local paths become absolute, so the manifest's model id does not depend on the cwd."""
    if isinstance(spec, (str, Path)) and str(spec) not in ("default", "base", "smollm2"):
        path = Path(spec).expanduser()
        if path.exists():
            return str(path.resolve())
    return spec


def load_models(
    compressor: CompressorSource, embedder: EmbedderSource, device: str | None
) -> tuple[Compressor, Embedder]:
    """The worker's ``Compressor`` and ``Embedder``; a spec that will not load is one EngineError line."""
    try:
        loaded = Compressor.of(compressor, device=device), Embedder.of(embedder, device=device)
    except ModelLoadError as error:
        raise EngineError(str(error)) from None
    if loaded[0].info is None or loaded[1].id is None:
        # the manifest records both identities, so summary vectors are never read by another model
        raise EngineError(
            "an index records its models' identities: pass specs, or models from Compressor.load / Embedder.load"
        )
    return loaded


class ChunkWorker:
    """Embeds and compresses batches of chunks with models it loads once."""

    def __init__(
        self,
        compressor: CompressorSource = None,
        embedder: EmbedderSource = None,
        device: str | None = None,
        threads: int | None = None,
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.compressor, self.embedder = load_models(compressor, embedder, device)

    def describe(self) -> ModelsInfo:
        compressor, embedder = self.compressor, self.embedder
        return ModelsInfo(compressor.info, embedder.id, embedder.dim, compressor.tokenizer)

    def run(self, batch: WorkBatch, on_stage: StageCallback | None = None) -> WorkResult:
        start = time.perf_counter()
        # encode() sorts by length inside the batch; embeddings are normalised by the store (cosine).
        embeddings = self.embedder.encode(batch.texts, batch_size=max(1, len(batch)))
        embedded = time.perf_counter()
        if on_stage is not None:
            on_stage("embedded", len(batch))
        # The chunker's ids carry no special tokens and go in unchanged: the compressor was trained on
        # text tokenised with add_special_tokens=False (ragcompress.training.data), so no BOS here.
        vectors = self.compressor.compress(batch.token_ids, batch_size=max(1, len(batch)), to_cpu=True)
        done = time.perf_counter()
        if on_stage is not None:
            on_stage("compressed", len(batch))
        return WorkResult(embeddings, vectors, embedded - start, done - embedded)
