"""``Embedder``: the sentence embedder that places chunks and queries in the FAISS index.

It owns the loaded SentenceTransformer, its identity (the id and dimension an index's manifest records,
so queries are only ever scored against embeddings of the same model) and its one verb, ``encode``.
``Embedder.load(spec)`` is the one place a spec becomes a model: ``None`` / ``"default"`` (the embedded
all-MiniLM-L6-v2), or a local path / name SentenceTransformer can load offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragcompress import defaults
from ragcompress.compressor import ModelLoadError, first_line
from ragcompress.store.manifest import EmbedderInfo


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

    def __init__(self, model, id: str | None = None) -> None:
        self.model = model
        self.id = id

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
        """``[len(texts), dim]`` float32 embeddings, unnormalised (the store normalises for cosine)."""
        rows = self.model.encode(
            list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)

    def __repr__(self) -> str:
        return f"Embedder(id={self.id!r})"
