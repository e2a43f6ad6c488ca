"""``Compressor``: one loaded AutoCompressor and everything that travels with it.

Indexing, retrieval and evaluation all need the same facts about a compressor: the model, its tokenizer,
the device and dtype it runs in, the pad id, and its identity (the ``CompressorInfo`` an index's manifest
records, so summary vectors are only ever read by the model that wrote them). This class owns them, and
``Compressor.load(spec)`` is the one place a spec becomes a model:

* ``None`` / ``"default"``: SmolLM2 + the adapter shipped in this package;
* ``"base"`` (or ``"smollm2"``): SmolLM2 as an untrained AutoCompressor;
* a directory written by ``save_adapter``: SmolLM2 + that adapter;
* a directory or HF id of a full AutoCompressor or base causal LM.

A spec that cannot be loaded is one ``ModelLoadError`` line naming the spec and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from ragcompress import defaults
from ragcompress.modeling import AutoCompressor, compress, unwrap
from ragcompress.store.manifest import CompressorInfo

DEFAULT_SPECS = ("default",)
BASE_SPECS = ("base", "smollm2")


class ModelLoadError(ValueError):
    """A compressor or embedder spec that cannot be loaded (one line: the spec and why)."""


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def pad_token_id(tokenizer) -> int:
    """The id padding positions get: the tokenizer's pad token, else its EOS, else 0.

    Padded positions are masked out, so any real token id is correct; this is the one fallback order.
    """
    for token in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token is not None:
            return int(token)
    return 0


BASE_COMPRESSOR_ID = f"{defaults.BASE_ID}+eos-summary"  # the untrained SmolLM2 AutoCompressor
ADAPTER_ID_PREFIX = f"{defaults.BASE_ID}+adapter:"  # + the adapter directory's name


def spec_identity(spec: str | Path | None) -> tuple[str, str] | None:
    """``(id, weights_hash)`` a spec loads as, computed from files without loading weights.

    None for a hub id (its weights hash is the download's commit, known once loaded) and for a path that
    holds no model. ``Compressor.load`` records exactly these values.
    """
    text = "default" if spec is None else str(spec)
    if text in DEFAULT_SPECS:
        return defaults.DEFAULT_COMPRESSOR_ID, defaults.adapter_hash()
    if text in BASE_SPECS:
        return BASE_COMPRESSOR_ID, defaults.files_hash([defaults.base_model_dir() / "model.safetensors"])
    path = Path(text)
    if (path / "adapter_config.json").is_file():
        return ADAPTER_ID_PREFIX + path.name, defaults.adapter_hash(path)
    if (path / "config.json").is_file():
        weights = sorted(path.glob("*.safetensors"))
        return text, defaults.files_hash(weights) if weights else "unknown"
    return None


def spec_for(info: CompressorInfo) -> str | None:
    """The spec that loads the compressor a manifest names; None for an adapter, whose directory the
    manifest does not keep (only its name)."""
    if info.id == defaults.DEFAULT_COMPRESSOR_ID:
        return "default"
    if info.id == BASE_COMPRESSOR_ID:
        return "base"
    if info.id.startswith(ADAPTER_ID_PREFIX):
        return None
    return info.id  # a local path or a hub id, as it was given to load


class Compressor:
    """An AutoCompressor with its tokenizer and identity; ``compress()`` turns texts into summary vectors.

    Build one with ``Compressor.load(spec, device=..., dtype=...)``, or wrap a model you loaded
    yourself with ``Compressor(model, tokenizer)`` (its identity is then only summary length and width).
    """

    def __init__(self, model, tokenizer, info: CompressorInfo | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.info = info  # None: loaded by the caller, id and weights unknown

    @classmethod
    def load(
        cls, spec: str | Path | None = None, device=None, dtype: torch.dtype | None = None
    ) -> Compressor:
        """The compressor ``spec`` names, in eval mode on ``device`` (default: CUDA when available), in
        ``dtype`` (default: `defaults.pick_dtype`, bf16 on GPUs and on CPUs with bf16 instructions, fp32 on
        other CPUs, or what ``RAGCOMPRESS_DTYPE`` names)."""
        try:
            return cls._load(spec, defaults.pick_device(device), dtype)
        except (OSError, ValueError, defaults.MissingDefaultModelError) as error:
            raise ModelLoadError(
                f"cannot load the compressor {str(spec or 'default')!r}: {first_line(error)}"
            ) from None

    @classmethod
    def _load(cls, spec, device: torch.device, dtype) -> Compressor:
        text = "default" if spec is None else str(spec)
        path = Path(text)
        if text in DEFAULT_SPECS:
            model, tokenizer = defaults.load_default(device=device, dtype=dtype)
        elif text in BASE_SPECS:
            model, tokenizer = defaults.load_base_compressor(device=device, dtype=dtype)
        elif (path / "adapter_config.json").is_file():
            model, tokenizer = defaults.load_default(device=device, dtype=dtype, adapter_dir=path)
        else:
            model, tokenizer = cls._load_model_dir(text, path, device, dtype)
        identity = spec_identity(text)
        if identity is None:  # a hub id: the download's commit stands for the weights
            identity = (text, getattr(model.config, "_commit_hash", None) or "unknown")
        compressor = cls(model.eval(), tokenizer)
        compressor.info = CompressorInfo(*identity, compressor.summary_length, compressor.hidden_size)
        return compressor

    @staticmethod
    def _load_model_dir(text: str, path: Path, device: torch.device, dtype):
        # a hub id is "name" or "namespace/name"; anything else that names no directory is a wrong path
        if not path.exists() and (path.is_absolute() or text.startswith((".", "~")) or text.count("/") >= 2):
            raise ValueError("no such directory; pass a trained compressor directory, 'default' or 'base'")
        if path.exists() and not (path / "config.json").is_file():
            raise ValueError(
                f"{path} holds neither an adapter (adapter_config.json) nor a model (config.json)"
            )
        model = AutoCompressor.from_pretrained(text, dtype=defaults.pick_dtype(device, dtype)).to(device)
        return model, AutoTokenizer.from_pretrained(text)

    @classmethod
    def of(cls, source: Any, device=None) -> Compressor:
        """A ``Compressor`` from a spec (str/Path/None), a ``Compressor``, or the older
        ``(model, tokenizer)`` / ``(model, tokenizer, info)`` tuples."""
        if isinstance(source, Compressor):
            return source
        if source is None or isinstance(source, (str, Path)):
            return cls.load(source, device=device)
        if isinstance(source, (tuple, list)) and len(source) in (2, 3):
            info = source[2] if len(source) == 3 else None
            if info is not None and not isinstance(info, CompressorInfo):
                info = CompressorInfo(info.id, info.weights_hash, info.summary_length, info.hidden_size)
            return cls(source[0], source[1], info)
        raise TypeError(
            "a compressor is None, a spec (str/Path), a Compressor, (model, tokenizer) or (model, tokenizer, info)"
        )

    # ---- what the model is -------------------------------------------------------------------------
    @property
    def core(self):
        """The AutoCompressor itself, under any peft wrapper."""
        return unwrap(self.model)

    @property
    def device(self) -> torch.device:
        """Where the model runs (the summary embeddings' device)."""
        return self.core.embed_summary.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype summary vectors enter the model in."""
        return self.core.embed_summary.weight.dtype

    @property
    def summary_length(self) -> int:
        """κ: summary vectors per compression step."""
        return int(self.core.config.summary_length)

    @property
    def hidden_size(self) -> int:
        """The width of one summary vector."""
        return int(self.core.get_input_embeddings().embedding_dim)

    @property
    def pad_id(self) -> int:
        return pad_token_id(self.tokenizer)

    @property
    def id(self) -> str | None:
        return self.info.id if self.info is not None else None

    # ---- its one verb ------------------------------------------------------------------------------
    def compress(
        self,
        chunks: Sequence[str] | Sequence[Sequence[int]],
        batch_size: int = 8,
        to_cpu: bool = True,
        **kwargs,
    ) -> list[torch.Tensor]:
        """One ``[κ·steps, hidden]`` tensor per chunk (texts, tokenized without special tokens, or token
        ids); see ``ragcompress.modeling.compress`` for ``segment_length``, ``softprompt``, ``progress``."""
        chunks = list(chunks)
        if chunks and isinstance(chunks[0], str):
            return compress(
                self.model, self.tokenizer, chunks, batch_size=batch_size, to_cpu=to_cpu, **kwargs
            )
        return compress(self.model, chunks, batch_size=batch_size, to_cpu=to_cpu, **kwargs)

    def __repr__(self) -> str:
        return f"Compressor(id={self.id!r}, device={self.device}, dtype={self.dtype})"
