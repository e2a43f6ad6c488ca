"""The engine interface: turn batches of chunks into embeddings and summary vectors.

The pipeline (``indexing.pipeline``) owns everything that must happen in one place and in order —
reading, chunking, deciding what changed, and committing to the store. An engine only does the heavy,
stateless part: given a batch of chunk texts and their token ids, return one embedding per chunk and
one summary-vector tensor per chunk. A new engine implements ``start`` and ``map``; ``map`` may run
ahead and in parallel as long as it yields results in the order the batches came in, which is what
makes every engine's store identical to the in-process one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragcompress.compressor import Compressor
from ragcompress.embedder import Embedder
from ragcompress.store.manifest import CompressorInfo

# A compressor is named by a spec (None/"default", "base", a path or an HF id) or given already loaded
# as a ``Compressor`` (or the older ``(model, tokenizer, info)``); an embedder by a spec or an
# ``Embedder`` (or ``(SentenceTransformer, embedder_id)``).
CompressorSource = str | Path | Compressor | tuple | None
EmbedderSource = str | Path | Embedder | tuple | None
# Called with ("embedded" | "compressed", number of chunks) as work finishes.
StageCallback = Callable[[str, int], None]


class EngineError(Exception):
    """An engine cannot start (missing optional dependency, a model that will not load): one line."""


@dataclass
class WorkBatch:
    """Chunks to process together. ``token_ids`` are the chunk texts' own tokens, no special tokens."""

    texts: list[str]
    token_ids: list[list[int]]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class WorkResult:
    """One row of ``embeddings`` ``[n, dim]`` and one ``[κ·steps, hidden]`` tensor per chunk, in batch order."""

    embeddings: np.ndarray
    vectors: list[torch.Tensor]
    embed_seconds: float = 0.0
    compress_seconds: float = 0.0


@dataclass
class ModelsInfo:
    """What the store's manifest records about the models, and the tokenizer the chunker must use."""

    compressor: CompressorInfo
    embedder_id: str
    embedder_dim: int
    tokenizer: Any = field(repr=False)


class Engine(ABC):
    """Holds the models (somewhere) for one indexing run; use as a context manager."""

    name: str = "engine"

    @abstractmethod
    def start(self) -> ModelsInfo:
        """Load the models (once per worker) and describe them."""

    @abstractmethod
    def map(
        self, batches: Iterable[WorkBatch], on_stage: StageCallback | None = None
    ) -> Iterator[WorkResult]:
        """Process ``batches``; yield one result per batch, in the order of ``batches``.

        ``batches`` is consumed lazily, so an engine that runs ahead pulls (and so chunks) only as far as
        it needs to keep its workers busy.
        """

    def close(self) -> None:  # noqa: B027 - optional hook: an engine with nothing to release skips it
        """Release workers and models."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
