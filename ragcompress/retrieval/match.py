"""Which models a Retriever uses, and the check that they are the ones the index was built with.

Summary vectors only mean something to the compressor that produced them, and FAISS scores only to the
embedder that produced the stored embeddings, so a mismatch is an error, never a warning.
"""

from __future__ import annotations

import logging
from dataclasses import astuple
from pathlib import Path
from typing import Any

from ragcompress.store import CompressorInfo, EmbedderInfo, Manifest, StoreMismatchError

log = logging.getLogger(__name__)


class ModelMismatchError(StoreMismatchError):
    """The compressor or embedder differs from the one that built the index (one-line message)."""


class ModelUnavailableError(StoreMismatchError):
    """The index names a model that cannot be loaded from its id alone."""


def compressor_spec(info: CompressorInfo, index_dir: Path) -> str:
    """The `load_compressor` spec for the compressor a manifest names."""
    from ragcompress.defaults import BASE_ID, DEFAULT_COMPRESSOR_ID

    if info.id == DEFAULT_COMPRESSOR_ID:
        return "default"
    if info.id == f"{BASE_ID}+eos-summary":
        return "base"
    if info.id.startswith(f"{BASE_ID}+adapter:"):
        # the manifest keeps only the adapter's directory name, not where it lives
        raise ModelUnavailableError(
            f"the index at {index_dir} was built with the adapter {info.id.split(':', 1)[1]!r}; "
            "pass its directory as model= (--model DIR)"
        )
    return info.id  # a local path or a hub id, as load_compressor was given it


def resolve_compressor(model: Any, manifest: Manifest, index_dir: Path, device=None):
    """``(model, tokenizer, ModelInfo | None)`` from a spec, ``(model, tokenizer[, info])`` or None."""
    from ragcompress.loading import load_compressor

    if model is None or isinstance(model, (str, Path)):
        spec = compressor_spec(manifest.compressor, index_dir) if model is None else model
        try:
            return load_compressor(spec, device=device)
        except (OSError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelUnavailableError(f"cannot load the compressor {str(spec)!r}: {first_line}") from None
    if isinstance(model, (tuple, list)) and len(model) in (2, 3):
        return model[0], model[1], (model[2] if len(model) == 3 else None)
    raise TypeError(
        "model must be None, a compressor spec (str/Path), (model, tokenizer) or (model, tokenizer, info)"
    )


def resolve_embedder(embedder: Any, manifest: Manifest, device=None) -> tuple[Any, str | None]:
    """``(SentenceTransformer, id or None)`` from a spec, an object, ``(object, id)`` or None."""
    from ragcompress.loading import load_embedder

    if embedder is None:
        embedder = manifest.embedder.id
    if isinstance(embedder, (str, Path)):
        try:
            return load_embedder(embedder, device=device)
        except (OSError, ValueError) as error:
            raise ModelUnavailableError(
                f"cannot load the embedder {str(embedder)!r}: {str(error).strip().splitlines()[0]}"
            ) from None
    if isinstance(embedder, (tuple, list)) and len(embedder) == 2:
        return embedder[0], embedder[1]
    if hasattr(embedder, "encode"):
        return embedder, None
    raise TypeError("embedder must be None, a spec (str/Path), a SentenceTransformer or (model, id)")


def _describe(values: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in values.items()) + ")"


def check_compressor(model, info, manifest: Manifest, index_dir: Path) -> None:
    """Raise `ModelMismatchError` unless the compressor is the index's.

    With a `ModelInfo` (what `load_compressor` returns) id and weights hash are compared too; a bare
    ``(model, tokenizer)`` can only be checked on summary length and width.
    """
    stored = manifest.compressor
    if info is not None:
        loaded = CompressorInfo(info.id, info.weights_hash, info.summary_length, info.hidden_size)
        fields = ("id", "weights_hash", "summary_length", "hidden_size")
    else:
        loaded = CompressorInfo(
            "?", "?", int(model.config.summary_length), int(model.get_input_embeddings().embedding_dim)
        )
        fields = ("summary_length", "hidden_size")
        log.info("compressor passed without its ModelInfo: checking summary length and width only")
    want = dict(zip(("id", "weights_hash", "summary_length", "hidden_size"), astuple(stored)))
    have = dict(zip(("id", "weights_hash", "summary_length", "hidden_size"), astuple(loaded)))
    if any(want[f] != have[f] for f in fields):
        raise ModelMismatchError(
            f"the index at {index_dir} was built with compressor {_describe(want)} "
            f"but the loaded compressor is {_describe({f: have[f] for f in fields})}; "
            "load the index's compressor (model=... / --model) or rebuild the index with this one "
            "(ragcompress index CORPUS --rebuild)"
        )


def embedding_dim(embedder) -> int | None:
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        method = getattr(embedder, name, None)
        if method is not None:
            return method()
    return None


def check_embedder(embedder, embedder_id: str | None, manifest: Manifest, index_dir: Path) -> None:
    """Raise `ModelMismatchError` unless the embedder is the index's (id when known, and dimension)."""
    stored: EmbedderInfo = manifest.embedder
    dim = embedding_dim(embedder)
    problems = []
    if embedder_id is not None and embedder_id != stored.id:
        problems.append(f"id={embedder_id}")
    if dim is not None and dim != stored.dim:
        problems.append(f"dim={dim}")
    if problems:
        raise ModelMismatchError(
            f"the index at {index_dir} was built with embedder (id={stored.id}, dim={stored.dim}) "
            f"but the loaded embedder has {', '.join(problems)}; load the index's embedder "
            "(embedder=... / --embedder) or rebuild the index with this one (ragcompress index CORPUS --rebuild)"
        )
