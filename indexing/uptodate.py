"""Whether a re-run of ``index`` has anything to do, decided before any model is loaded.

Loading the compressor and embedder takes longer (tens of seconds) than everything else a re-run on an
unchanged corpus does. The store answers the question from its files: the documents' paths and content
hashes against the corpus just read, and the manifest against the settings asked for. The models'
identities come from their specs — the same id and weights hash ``load_compressor`` records, computed
from the files without loading any weights. When a model cannot be identified that way (a hub id, an
engine object holding its own models), the run loads the models and decides as before.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

from indexing.engines.base import CompressorSource, EmbedderSource
from indexing.engines.worker import resolve_spec
from indexing.readers import Document
from ragcompress.store import FaissInfo, Manifest, Store, StoreStats

Settings = tuple[int, int, str, str]  # chunk_tokens, overlap, vector_dtype, faiss_kind


def compressor_identity(source: CompressorSource) -> tuple[str, str] | None:
    """``(id, weights_hash)`` as ``load_compressor`` would record them; None when only loading can tell."""
    from ragcompress import defaults
    from ragcompress.loading import files_hash

    if isinstance(source, tuple):
        info = source[2] if len(source) == 3 else None
        return (info.id, info.weights_hash) if info is not None else None
    spec = resolve_spec(source)
    if spec is None or str(spec) == "default":
        return defaults.DEFAULT_COMPRESSOR_ID, defaults.adapter_hash()
    if str(spec) in ("base", "smollm2"):
        return f"{defaults.BASE_ID}+eos-summary", files_hash(
            [defaults.base_model_dir() / "model.safetensors"]
        )
    path = Path(spec)
    if (path / "adapter_config.json").is_file():
        files = [p for p in path.iterdir() if p.is_file()]
        return f"{defaults.BASE_ID}+adapter:{path.name}", files_hash(files)
    if (path / "config.json").is_file():
        weights = sorted(path.glob("*.safetensors"))
        return str(spec), files_hash(weights) if weights else "unknown"
    return None  # a hub id: its weights hash is the download's commit, known once loaded


def embedder_identity(source: EmbedderSource) -> str | None:
    """The embedder id ``load_embedder`` would record."""
    from ragcompress.defaults import DEFAULT_EMBEDDER_ID

    if isinstance(source, tuple):
        return source[1]
    spec = resolve_spec(source)
    if spec is None or str(spec) in ("default", DEFAULT_EMBEDDER_ID):
        return DEFAULT_EMBEDDER_ID
    return str(spec)


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
