"""``Embedder``: the sentence embedder that places chunks and queries in the FAISS index.

It owns the loaded SentenceTransformer, its identity (the id and dimension an index's manifest records,
so queries are only ever scored against embeddings of the same model) and its one verb, ``encode``.
``Embedder.load(spec)`` is the one place a spec becomes a model: ``None`` / ``"default"`` (the embedded
all-MiniLM-L6-v2), or a local path / name SentenceTransformer can load offline.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragcompress import defaults
from ragcompress.compressor import ModelLoadError, first_line
from ragcompress.store.manifest import EmbedderInfo

logger = logging.getLogger(__name__)
GRAPH_DEVICES = ("cuda",)  # where a few texts are embedded through fast_embed.GraphEncoder
PROBES = ("Who wrote it?", "In which year was the harbour wall of the old town rebuilt, and by whom?")


def spec_id(spec: str | Path | None) -> str:
    """The id an embedder spec is recorded under (``Embedder.load`` records exactly this)."""
    if spec is None or str(spec) in ("default", defaults.DEFAULT_EMBEDDER_ID):
        return defaults.DEFAULT_EMBEDDER_ID
    return str(spec)


class Embedder:
    """A SentenceTransformer with its id; ``encode()`` gives one float32 row per text.

    Build one with ``Embedder.load(spec, device=...)``, or wrap a model you loaded yourself with
    ``Embedder(model, id)`` (``id=None``: only its dimension can be checked against an index).
    """

    def __init__(self, model, id: str | None = None, graphs: bool = True) -> None:
        self.model = model
        self.id = id
        # on a GPU, up to fast_embed.MAX_ROWS texts go through replayed CUDA graphs (issue 28)
        self.graphs = graphs
        self._graph_encoder = None  # None: not tried yet; False: encode() it is

    @classmethod
    def load(cls, spec: str | Path | None = None, device=None) -> Embedder:
        """The embedder ``spec`` names, on ``device`` (default: CUDA when available)."""
        embedder_id = spec_id(spec)
        try:
            if embedder_id == defaults.DEFAULT_EMBEDDER_ID:
                model = defaults.load_default_embedder(device)
            else:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(embedder_id, device=str(defaults.pick_device(device)))
        except (OSError, ValueError, defaults.MissingDefaultModelError) as error:
            raise ModelLoadError(f"cannot load the embedder {embedder_id!r}: {first_line(error)}") from None
        return cls(model, embedder_id)

    @classmethod
    def of(cls, source: Any, device=None) -> Embedder:
        """An ``Embedder`` from a spec (str/Path/None), an ``Embedder``, a loaded SentenceTransformer, or
        the older ``(SentenceTransformer, id)`` tuple."""
        if isinstance(source, Embedder):
            return source
        if source is None or isinstance(source, (str, Path)):
            return cls.load(source, device=device)
        if isinstance(source, (tuple, list)) and len(source) == 2:
            return cls(source[0], source[1])
        if hasattr(source, "encode"):
            return cls(source, None)
        raise TypeError(
            "an embedder is None, a spec (str/Path), an Embedder, a SentenceTransformer or (model, id)"
        )

    @property
    def device(self) -> torch.device | None:
        """Where the model runs (None for a model that does not say)."""
        device = getattr(self.model, "device", None)
        return None if device is None else torch.device(device)

    @property
    def dim(self) -> int:
        """The embedding width."""
        # sentence-transformers ≥ 5 renamed the method; accept either so older installs keep working.
        getter = getattr(self.model, "get_embedding_dimension", None)
        getter = getter or self.model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def info(self) -> EmbedderInfo | None:
        """What an index's manifest records (None when the id is unknown)."""
        return EmbedderInfo(self.id, self.dim) if self.id is not None else None

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """``[len(texts), dim]`` float32 embeddings, as the model's pipeline makes them (the store
        normalises for cosine). On a GPU a few short texts (questions) are embedded through CUDA graphs
        (``fast_embed``), checked against ``encode`` on first use; ``graphs=False`` turns that off."""
        graphed = self._graphed()
        rows = graphed.encode(texts) if graphed is not None else None
        return rows if rows is not None else self._encode(texts, batch_size)

    def warm_up(self, batches: Sequence[int] = (1, 2), tokens: int = 64) -> None:
        """Where ``encode`` replays CUDA graphs, capture now those of questions of up to ``tokens``
        tokens at these batch sizes (each bucket is otherwise captured by its first question)."""
        from ragcompress.fast_embed import LENGTH_BUCKET

        graphed = self._graphed()
        for rows in batches if graphed is not None else ():
            for length in range(LENGTH_BUCKET, tokens + 1, LENGTH_BUCKET):
                graphed.encode([" ".join(["a"] * (length - 2))] * rows)  # 2 special tokens around them

    def _encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        rows = self.model.encode(
            list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)

    def _graphed(self):
        """The checked GraphEncoder, or None where ``encode`` serves every text."""
        if not self.graphs or self._graph_encoder is False:
            return None
        if self._graph_encoder is None:
            self._graph_encoder = self._checked_graph_encoder() or False
        return self._graph_encoder or None

    def _checked_graph_encoder(self):
        """A GraphEncoder whose embeddings of two probe questions (one of them padded) match
        ``encode``'s, else None (with why, once)."""
        from ragcompress import fast_embed

        if getattr(self.device, "type", None) not in GRAPH_DEVICES:
            return None
        why = fast_embed.reason(self.model)
        if why is not None:
            logger.info("embedding through encode, not CUDA graphs: %s", why)
            return None
        try:
            graphed = fast_embed.GraphEncoder(self.model)
            got = graphed.encode(PROBES)
        except Exception as error:  # a failed capture costs only the speed
            logger.warning("embedding through encode, not CUDA graphs: %s", first_line(error))
            return None
        want = self._encode(PROBES)
        tolerance = 1e-4 if str(graphed.dtype) == "torch.float32" else 1e-2  # half precision rounds more
        gap = float(np.abs(got - want).max())
        if gap > tolerance:
            logger.warning("embedding through encode, not CUDA graphs: they differ by %.2g", gap)
            return None
        return graphed

    def __repr__(self) -> str:
        return f"Embedder(id={self.id!r})"
