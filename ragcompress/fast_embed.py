"""Embedding a few questions on a GPU as replayed CUDA graphs (issue 28).

``SentenceTransformer.encode`` of one question is a few hundred small kernels launched one by one from
Python: on an H200 it took 6.1 ms for a 6-layer encoder whose arithmetic takes a fraction of that, two
thirds of a fused answer's retrieval. ``GraphEncoder`` runs the same computation (the encoder, mean
pooling, the optional normalisation) from static buffers: questions are right-padded to a multiple of
``LENGTH_BUCKET`` tokens and a batch to a power of two, each (rows, length) bucket is captured once as a
CUDA graph, and a call copies its tokens in, replays the graph and reads the embeddings out. More than
``MAX_ROWS`` texts, or texts longer than ``MAX_TOKENS`` tokens (chunks being indexed), stay with
``encode``: the graphs' memory stays small.

It covers the pipelines whose output it can reproduce exactly: a ``Transformer`` module (an encoder
with SDPA or eager attention) then ``Pooling`` by mean, then ``Normalize`` or nothing. ``reason(model)``
says why another pipeline is not covered, and ``Embedder`` keeps ``encode`` for it. Padding changes
nothing but rounding: padded keys are masked out of attention and out of the mean.
On a CPU the same code runs eagerly from its buffers (what the tests check); only CUDA captures.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch

LENGTH_BUCKET = 16  # questions are right-padded to a multiple of this many tokens
MAX_ROWS = 16  # larger batches (indexing) go through encode, which is already busy enough per launch
MAX_TOKENS = 128  # longer texts (chunks) too: at most 5 × 8 buckets, each graph with its own memory
# a text this many characters long is left to encode untokenized: it is a chunk, not a question, and
# would otherwise be tokenized twice (here, then by encode). Subword tokens average ~4 characters in
# English, so such a text nearly always passes MAX_TOKENS; one that would not just takes encode's path.
MAX_CHARS = 8 * MAX_TOKENS
ATTENTION = ("sdpa", "eager")  # implementations that take a prepared 4-D mask as it is


def _pooling_is_mean(pooling) -> bool:
    config = pooling.get_config_dict()
    if "pooling_mode" in config:  # sentence-transformers ≥ 6
        return config["pooling_mode"] == "mean"
    modes = {key for key, on in config.items() if key.startswith("pooling_mode_") and on}
    return modes == {"pooling_mode_mean_tokens"}


def reason(model) -> str | None:
    """Why ``GraphEncoder`` cannot reproduce ``model.encode`` (None: it can)."""
    modules = list(model) if isinstance(model, torch.nn.Sequential) else []
    names = [type(m).__name__ for m in modules]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return f"modules {names or type(model).__name__} are not Transformer, Pooling(, Normalize)"
    if not _pooling_is_mean(modules[1]):
        return "its pooling is not the mean of the tokens"
    encoder = getattr(modules[0], "auto_model", None)
    if encoder is None or getattr(encoder.config, "is_decoder", False):
        return "its Transformer module holds no encoder"
    attention = getattr(encoder.config, "_attn_implementation", None)
    if attention not in ATTENTION:
        return f"attention {attention!r} does not take a prepared mask"
    return None


def _tokenize(model, texts: Sequence[str]) -> dict:
    # sentence-transformers ≥ 6 renamed tokenize to preprocess and warns on the old name
    return (getattr(model, "preprocess", None) or model.tokenize)(list(texts))


class GraphEncoder:
    """``encode(texts)`` for at most ``MAX_ROWS`` texts of at most ``MAX_TOKENS`` tokens, as
    ``model.encode`` gives it, from graphs."""

    def __init__(self, model) -> None:
        why = reason(model)
        if why is not None:
            raise ValueError(f"GraphEncoder cannot run this embedder: {why}")
        self.model = model
        self.encoder = model[0].auto_model
        self.normalize = len(model) == 3
        self.max_tokens = int(model.max_seq_length or self.encoder.config.max_position_embeddings)
        self.device = next(self.encoder.parameters()).device
        self.dtype = next(self.encoder.parameters()).dtype
        self.additive = self.encoder.config._attn_implementation == "eager"
        self.uses_types = "token_type_ids" in _tokenize(model, ["x"])
        self._graphs: dict[tuple[int, int], _Bucket] = {}
        self._lock = threading.Lock()  # the buffers are shared: one call at a time fills and reads them

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> np.ndarray | None:
        """``[len(texts), dim]`` float32 embeddings; None for texts it does not cover (more than
        ``MAX_ROWS``, or longer than ``MAX_TOKENS`` once tokenized or ``MAX_CHARS`` before)."""
        if not 0 < len(texts) <= MAX_ROWS or any(len(text) > MAX_CHARS for text in texts):
            return None
        features = _tokenize(self.model, texts)
        ids = features["input_ids"]
        rows, length = ids.shape
        if length > MAX_TOKENS:
            return None
        size = (
            1 << (rows - 1).bit_length(),
            min(-(-length // LENGTH_BUCKET) * LENGTH_BUCKET, self.max_tokens),
        )
        with self._lock:
            bucket = self._graphs.get(size)
            if bucket is None:
                bucket = self._graphs[size] = _Bucket(self, *size)
            return bucket.run(features).float().cpu().numpy()

    def forward(self, ids: torch.Tensor, types: torch.Tensor | None, keep: torch.Tensor) -> torch.Tensor:
        """Pooled (and normalised) embeddings of right-padded ``ids``; ``keep[b, j]``: token j is real."""
        rows, length = ids.shape
        mask = keep[:, None, None, :].expand(rows, 1, length, length)
        if self.additive:  # eager attention adds the mask to the scores
            mask = torch.zeros(mask.shape, dtype=self.dtype, device=ids.device).masked_fill(
                ~mask, torch.finfo(self.dtype).min
            )
        inputs = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            inputs["token_type_ids"] = types
        hidden = self.encoder(**inputs).last_hidden_state
        weights = keep.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled


class _Bucket:
    """The static inputs of one (rows, length) bucket and, on CUDA, its captured graph.

    ``inputs`` holds the token ids, token type ids and the keep mask (1: a real token) as one tensor, so
    a call moves them to the GPU in one copy."""

    def __init__(self, owner: GraphEncoder, rows: int, length: int) -> None:
        self.owner, self.rows, self.length = owner, rows, length
        self.inputs = torch.zeros(3, rows, length, dtype=torch.long, device=owner.device)
        self.out: torch.Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        if owner.device.type == "cuda":
            self.inputs[2, :, 0] = 1  # warm-up and capture read a row that attends to one token
            self._capture()

    def _forward(self) -> torch.Tensor:
        ids, types, keep = self.inputs
        return self.owner.forward(ids, types if self.owner.uses_types else None, keep != 0)

    def _capture(self) -> None:
        device = self.owner.device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(2):  # warm kernels and workspaces outside the capture
                self._forward()
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = self._forward()

    def run(self, features: dict) -> torch.Tensor:
        ids = features["input_ids"]
        rows, length = ids.shape
        staged = torch.zeros(3, self.rows, self.length, dtype=torch.long)
        staged[0, :rows, :length] = ids
        if "token_type_ids" in features:
            staged[1, :rows, :length] = features["token_type_ids"]
        staged[2, :rows, :length] = features["attention_mask"]
        staged[2, :, 0] = 1  # a padding row attends to one token: no row is all masked
        self.inputs.copy_(staged)
        if self.graph is None:
            return self._forward()[:rows]
        self.graph.replay()
        return self.out[:rows]
