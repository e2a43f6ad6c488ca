"""The tuple-shaped loaders of earlier releases, kept for callers that unpack them.

New code uses ``Compressor.load(spec)`` and ``Embedder.load(spec)`` (ragcompress/compressor.py,
ragcompress/embedder.py), which own the loading; these two only unpack what those return.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ragcompress.compressor import Compressor
from ragcompress.defaults import files_hash
from ragcompress.embedder import Embedder
from ragcompress.store.manifest import CompressorInfo

ModelInfo = CompressorInfo  # the identity a loaded compressor carries (what the manifest records)

__all__ = ["ModelInfo", "files_hash", "load_compressor", "load_embedder"]


def load_compressor(spec: str | Path | None = None, device=None, dtype: torch.dtype | None = None):
    """``(model, tokenizer, ModelInfo)`` for a compressor spec: ``Compressor.load`` unpacked."""
    compressor = Compressor.load(spec, device=device, dtype=dtype)
    return compressor.model, compressor.tokenizer, compressor.info


def load_embedder(spec: str | Path | None = None, device=None):
    """``(SentenceTransformer, embedder id)``: ``Embedder.load`` unpacked."""
    embedder = Embedder.load(spec, device=device)
    return embedder.model, embedder.id
