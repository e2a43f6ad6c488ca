"""Resolve a compressor spec (as the CLI and the Retriever take it) into ``(model, tokenizer, info)``.

Specs: ``None`` or ``"default"`` (the embedded default: SmolLM2 + the shipped adapter), ``"base"`` (SmolLM2
as an untrained AutoCompressor), a directory written by ``save_adapter`` (SmolLM2 + that adapter), or a
directory / HF id of a full AutoCompressor or base causal LM already on disk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class ModelInfo:
    id: str  # what the store manifest records as the compressor's identity
    weights_hash: str  # changes whenever the weights do
    summary_length: int
    hidden_size: int


def files_hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _info(model, model_id: str, weights_hash: str) -> ModelInfo:
    return ModelInfo(
        model_id, weights_hash, model.config.summary_length, model.get_input_embeddings().embedding_dim
    )


def load_compressor(spec: str | Path | None = None, device=None, dtype: torch.dtype | None = None):
    """``(model, tokenizer, ModelInfo)`` for a compressor spec, in eval mode on ``device``."""
    from ragcompress import defaults

    device = defaults.pick_device(device)
    if spec is None or str(spec) == "default":
        model, tokenizer = defaults.load_default(device=device, dtype=dtype)
        return model, tokenizer, _info(model, defaults.DEFAULT_COMPRESSOR_ID, defaults.adapter_hash())
    if str(spec) in ("base", "smollm2"):
        model, tokenizer = defaults.load_base_compressor(device=device, dtype=dtype)
        base = defaults.base_model_dir() / "model.safetensors"
        return model.eval(), tokenizer, _info(model, f"{defaults.BASE_ID}+eos-summary", files_hash([base]))
    path = Path(spec)
    text = str(spec)
    # a hub id is "name" or "namespace/name"; anything else that names no directory is a wrong path
    if not path.exists() and (path.is_absolute() or text.startswith((".", "~")) or text.count("/") >= 2):
        raise ValueError(
            f"compressor {spec} does not exist: pass a trained compressor directory, 'default' or 'base'"
        )
    if (path / "adapter_config.json").is_file():
        model, tokenizer = defaults.load_default(device=device, dtype=dtype, adapter_dir=path)
        files = [p for p in path.iterdir() if p.is_file()]
        return model, tokenizer, _info(model, f"{defaults.BASE_ID}+adapter:{path.name}", files_hash(files))
    if path.exists() and not (path / "config.json").is_file():
        raise ValueError(f"{path} holds neither an adapter (adapter_config.json) nor a model (config.json)")
    from transformers import AutoTokenizer

    from ragcompress.modeling import AutoCompressor

    model = (
        AutoCompressor.from_pretrained(str(spec), dtype=defaults.pick_dtype(device, dtype)).to(device).eval()
    )
    tokenizer = AutoTokenizer.from_pretrained(str(spec))
    if path.is_dir():
        weights = sorted(path.glob("*.safetensors"))
        weights_hash = files_hash(weights) if weights else "unknown"
    else:
        weights_hash = getattr(model.config, "_commit_hash", None) or "unknown"
    return model, tokenizer, _info(model, str(spec), weights_hash)


def load_embedder(spec: str | Path | None = None, device=None):
    """``(SentenceTransformer, embedder id)``: the default all-MiniLM-L6-v2 or any local path / name."""
    from ragcompress import defaults

    if spec is None or str(spec) == "default" or str(spec) == defaults.DEFAULT_EMBEDDER_ID:
        return defaults.load_default_embedder(device), defaults.DEFAULT_EMBEDDER_ID
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(spec), device=str(defaults.pick_device(device))), str(spec)
