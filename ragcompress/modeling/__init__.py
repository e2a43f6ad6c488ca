"""AutoCompressor modeling core: the segment loop, concrete classes, the loader and `compress`."""

from ragcompress.modeling.autocompressor import (
    DEFAULT_SUMMARY_LENGTH,
    AutoCompressorMixin,
    AutoCompressorOutput,
    set_autocompressor_defaults,
    split_segments,
)
from ragcompress.modeling.compress import compress, segment_plan, tokenize_chunks
from ragcompress.modeling.models import (
    AutoCompressor,
    AutoCompressorModel,
    LlamaAutoCompressorModel,
    MissingSummaryEmbeddingsError,
    OPTAutoCompressorModel,
    autocompressor_class,
    autocompressor_class_for_config,
    unwrap,
)
from ragcompress.modeling.positions import segment_position_ids

__all__ = [
    "DEFAULT_SUMMARY_LENGTH",
    "AutoCompressor",
    "AutoCompressorMixin",
    "AutoCompressorModel",
    "AutoCompressorOutput",
    "LlamaAutoCompressorModel",
    "MissingSummaryEmbeddingsError",
    "OPTAutoCompressorModel",
    "autocompressor_class",
    "autocompressor_class_for_config",
    "compress",
    "segment_plan",
    "segment_position_ids",
    "set_autocompressor_defaults",
    "split_segments",
    "tokenize_chunks",
    "unwrap",
]
