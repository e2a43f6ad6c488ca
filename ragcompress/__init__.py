"""ragcompress: retrieval-augmented generation over a corpus pre-compressed into summary vectors.

Names are imported on first use, so ``import ragcompress`` (and the CLI's start-up) stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "AutoCompressor": "ragcompress.modeling",
    "AutoCompressorModel": "ragcompress.modeling",
    "LlamaAutoCompressorModel": "ragcompress.modeling",
    "OPTAutoCompressorModel": "ragcompress.modeling",
    "compress": "ragcompress.modeling",
    "Compressor": "ragcompress.compressor",
    "Embedder": "ragcompress.embedder",
    "ModelLoadError": "ragcompress.compressor",
    "load_default": "ragcompress.defaults",
    "load_default_embedder": "ragcompress.defaults",
    "load_compressor": "ragcompress.loading",
    "Retriever": "ragcompress.retrieval",
    "Store": "ragcompress.store",
    "TrainConfig": "ragcompress.training",
    "train": "ragcompress.training",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ragcompress' has no attribute {name!r}")


def __dir__():
    return __all__
