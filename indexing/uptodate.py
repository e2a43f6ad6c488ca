"""Whether a re-run of ``index`` has anything to do, decided before any model is loaded.

Loading the compressor and embedder takes longer (tens of seconds) than everything else a re-run on an
unchanged corpus does. The store answers the question from its files: the documents' paths and content
hashes against the corpus just read, and the manifest against the settings asked for. The models'
identities come from their specs — the same id and weights hash ``Compressor.load`` records
(``ragcompress.compressor.spec_identity``), computed from the files without loading any weights. When a model cannot be identified that way (a hub id, an
engine object holding its own models), the run loads the models and decides as before.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

from indexing.engines.base import CompressorSource, EmbedderSource
from indexing.engines.worker import resolve_spec
from indexing.readers import Document
from ragcompress.compressor import Compressor, spec_identity
from ragcompress.embedder import Embedder, spec_id
from ragcompress.store import FaissInfo, Manifest, Store, StoreStats

Settings = tuple[int, int, str, str]  # chunk_tokens, overlap, vector_dtype, faiss_kind


def compressor_identity(source: CompressorSource) -> tuple[str, str] | None:
    """``(id, weights_hash)`` as ``Compressor.load`` records them; None when only loading can tell."""
    if isinstance(source, (Compressor, tuple, list)):  # loaded already: its identity, if it has one
        info = source.info if isinstance(source, Compressor) else source[2] if len(source) == 3 else None
        return (info.id, info.weights_hash) if info is not None else None
    return spec_identity(resolve_spec(source))


def embedder_identity(source: EmbedderSource) -> str | None:
    """The embedder id ``Embedder.load`` records; None when only loading can tell."""
    if isinstance(source, Embedder):
        return source.id
    if isinstance(source, (tuple, list)):
        return source[1]
    if source is not None and not isinstance(source, (str, Path)):
        return None  # a loaded SentenceTransformer: no recorded id
    return spec_id(resolve_spec(source))


def up_to_date(
    index_dir: Path,
    documents: list[Document],
    model: CompressorSource,
    embedder: EmbedderSource,
    settings: Settings,
) -> StoreStats | None:
    """The store's stats when it already holds exactly ``documents``, whole, built with these models and
    settings; None when there is work to do or the models must be loaded to tell.

    Raises ``StoreMismatchError`` — as the full run would after loading the models — when the models are
    the store's but a setting (chunking, vector dtype, index kind) is not.
    """
    if not Store.exists(index_dir):
        return None
    try:
        compressor, embedder_id = compressor_identity(model), embedder_identity(embedder)
    except (OSError, RuntimeError):  # missing or unreadable model files: loading reports them properly
        return None
    if compressor is None or embedder_id is None:
        return None
    with Store.open(index_dir, readonly=False) as store:
        stored = store.manifest
        if (
            compressor != (stored.compressor.id, stored.compressor.weights_hash)
            or embedder_id != stored.embedder.id
        ):
            return None  # other models: the full run loads them and names them in its mismatch error
        # Held as by any run: a writer elsewhere is refused, and what a killed run left (a stale
        # faiss.index, uncommitted shards) is repaired here too, as the next writer always does.
        writer = store.begin_update(expect=_wanted(stored, settings))
        try:
            # The same test the update applies (indexing.write): a document is done when its id and
            # content hash are in the store and it is whole (not a partial long document).
            held = {doc.doc_id: (doc.content_hash, doc.partial) for doc in store.documents()}
            current = {doc.doc_id: (doc.content_hash, False) for doc in documents}
            return store.stats() if held == current else None
        finally:
            writer.close()


def _wanted(stored: Manifest, settings: Settings) -> Manifest:
    """The manifest the full run would build: the stored one's model-derived fields (the identities
    matched) with the settings of this call."""
    chunk_tokens, overlap, vector_dtype, faiss_kind = settings
    scale_dtype = next(f.default for f in fields(Manifest) if f.name == "scale_dtype")
    return replace(
        stored,
        vector_dtype=vector_dtype,
        scale_dtype=scale_dtype,
        chunking=replace(stored.chunking, chunk_tokens=chunk_tokens, overlap=overlap),
        faiss=replace(stored.faiss, kind=faiss_kind, metric=FaissInfo().metric),
    )
