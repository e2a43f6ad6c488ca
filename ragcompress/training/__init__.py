"""Training: the substep trainer (truncated BPTT with stop-gradient), random segmenting, data, LoRA."""

from ragcompress.training.config import TrainConfig
from ragcompress.training.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
