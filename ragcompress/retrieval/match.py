"""Which models a Retriever uses, and the check that they are the ones the index was built with.

Summary vectors only mean something to the compressor that produced them, and FAISS scores only to the
embedder that produced the stored embeddings, so a mismatch is an error, never a warning.
"""

from __future__ import annotations

import logging
from dataclasses import astuple
from pathlib import Path
from typing import Any

from ragcompress.compressor import Compressor, spec_for
from ragcompress.embedder import Embedder
from ragcompress.store import CompressorInfo, EmbedderInfo, Manifest, StoreMismatchError

log = logging.getLogger(__name__)


class ModelMismatchError(StoreMismatchError):
    """The compressor or embedder differs from the one that built the index (one-line message)."""


class ModelUnavailableError(StoreMismatchError):
    """The index names a model that cannot be loaded from its id alone (an adapter: pass its directory).

    A spec that fails to load raises ``ragcompress.compressor.ModelLoadError`` (one line)."""


def load_compressor_for(model: Any, manifest: Manifest, index_dir: Path, device=None) -> Compressor:
    """The ``Compressor`` a Retriever uses: ``model`` as given (spec, Compressor or tuple), or for None
    the one the index's manifest names."""
    if model is None:
        model = spec_for(manifest.compressor)
        if model is None:  # the manifest keeps only the adapter's directory name, not where it lives
            raise ModelUnavailableError(
                f"the index at {index_dir} was built with the adapter "
                f"{manifest.compressor.id.split(':', 1)[1]!r}; pass its directory as model= (--model DIR)"
            )
    return Compressor.of(model, device=device)


def load_embedder_for(embedder: Any, manifest: Manifest, device=None) -> Embedder:
    """The ``Embedder`` a Retriever uses: ``embedder`` as given, or for None the one the index names."""
    return Embedder.of(manifest.embedder.id if embedder is None else embedder, device=device)


def _describe(values: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in values.items()) + ")"


def check_compressor(compressor: Compressor, manifest: Manifest, index_dir: Path) -> None:
    """Raise `ModelMismatchError` unless the compressor is the index's.

    With its identity (a ``Compressor.load``-ed one) id and weights hash are compared too; a model the
    caller loaded can only be checked on summary length and width.
    """
    stored = manifest.compressor
    names = ("id", "weights_hash", "summary_length", "hidden_size")
    if compressor.info is not None:
        loaded, fields = compressor.info, names
    else:
        loaded = CompressorInfo("?", "?", compressor.summary_length, compressor.hidden_size)
        fields = ("summary_length", "hidden_size")
        log.info("compressor passed without its identity: checking summary length and width only")
    want = dict(zip(names, astuple(stored)))
    have = dict(zip(names, astuple(loaded)))
    if any(want[f] != have[f] for f in fields):
        raise ModelMismatchError(
            f"the index at {index_dir} was built with compressor {_describe(want)} "
            f"but the loaded compressor is {_describe({f: have[f] for f in fields})}; "
            "load the index's compressor (model=... / --model) or rebuild the index with this one "
            "(ragcompress index CORPUS --rebuild)"
        )


def check_embedder(embedder: Embedder, manifest: Manifest, index_dir: Path) -> None:
    """Raise `ModelMismatchError` unless the embedder is the index's (id when known, and dimension)."""
    stored: EmbedderInfo = manifest.embedder
    problems = []
    if embedder.id is not None and embedder.id != stored.id:
        problems.append(f"id={embedder.id}")
    if embedder.dim != stored.dim:
        problems.append(f"dim={embedder.dim}")
    if problems:
        raise ModelMismatchError(
            f"the index at {index_dir} was built with embedder (id={stored.id}, dim={stored.dim}) "
            f"but the loaded embedder has {', '.join(problems)}; load the index's embedder "
            "(embedder=... / --embedder) or rebuild the index with this one (ragcompress index CORPUS --rebuild)"
        )
