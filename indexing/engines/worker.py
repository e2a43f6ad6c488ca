"""``ChunkWorker``: one copy of the compressor and the embedder, and the batch step every engine runs.

The local engine holds one worker in-process; the Ray engine holds one per actor. Keeping the step in
one place is what makes the engines agree chunk for chunk.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
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
from ragcompress.modeling import compress


def resolve_spec(spec: CompressorSource | EmbedderSource) -> CompressorSource | EmbedderSource:
    """Existing local paths become absolute, so the manifest's model id does not depend on the cwd."""
    if isinstance(spec, (str, Path)) and str(spec) not in ("default", "base", "smollm2"):
        path = Path(spec).expanduser()
        if path.exists():
            return str(path.resolve())
    return spec


def load_models(compressor: CompressorSource, embedder: EmbedderSource, device: str | None):
    """``(model, tokenizer, ModelInfo, embedder, embedder_id)``; spec errors become one-line EngineErrors."""
    from ragcompress.defaults import MissingDefaultModelError
    from ragcompress.loading import load_compressor, load_embedder

    if isinstance(compressor, tuple):
        model, tokenizer, info = compressor
    else:
        try:
            model, tokenizer, info = load_compressor(compressor, device=device)
        except (OSError, ValueError, MissingDefaultModelError) as error:
            raise EngineError(f"cannot load the compressor {compressor or 'default'!r}: {error}") from None
    if isinstance(embedder, tuple):
        embedding_model, embedder_id = embedder
    else:
        try:
            embedding_model, embedder_id = load_embedder(embedder, device=device)
        except (OSError, ValueError, MissingDefaultModelError) as error:
            raise EngineError(f"cannot load the embedder {embedder or 'default'!r}: {error}") from None
    return model, tokenizer, info, embedding_model, embedder_id


def embedding_dimension(embedder) -> int:
    # sentence-transformers ≥ 5 renamed the method; accept either so older installs keep working.
    getter = getattr(embedder, "get_embedding_dimension", None) or embedder.get_sentence_embedding_dimension
    return int(getter())


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
        self.model, self.tokenizer, self.info, self.embedder, self.embedder_id = load_models(
            compressor, embedder, device
        )

    def describe(self) -> ModelsInfo:
        return ModelsInfo(self.info, self.embedder_id, embedding_dimension(self.embedder), self.tokenizer)

    def run(self, batch: WorkBatch, on_stage: StageCallback | None = None) -> WorkResult:
        start = time.perf_counter()
        # encode() sorts by length inside the batch; embeddings are normalised by the store (cosine).
        embeddings = self.embedder.encode(
            batch.texts, batch_size=max(1, len(batch)), convert_to_numpy=True, show_progress_bar=False
        )
        embeddings = np.asarray(embeddings, dtype=np.float32).reshape(len(batch), -1)
        embedded = time.perf_counter()
        if on_stage is not None:
            on_stage("embedded", len(batch))
        # The chunker's ids carry no special tokens and go in unchanged: the compressor was trained on
        # text tokenised with add_special_tokens=False (ragcompress.training.data), so no BOS here.
        vectors = compress(self.model, batch.token_ids, batch_size=max(1, len(batch)), to_cpu=True)
        done = time.perf_counter()
        if on_stage is not None:
            on_stage("compressed", len(batch))
        return WorkResult(embeddings, vectors, embedded - start, done - embedded)
