"""ragcompress: retrieval-augmented generation over a corpus pre-compressed into summary vectors."""

from ragcompress.modeling import (
    AutoCompressor,
    AutoCompressorModel,
    LlamaAutoCompressorModel,
    OPTAutoCompressorModel,
    compress,
)

__version__ = "0.1.0"

__all__ = [
    "AutoCompressor",
    "AutoCompressorModel",
    "LlamaAutoCompressorModel",
    "OPTAutoCompressorModel",
    "compress",
    "__version__",
]
