"""``index_corpus``: the ``index`` verb top to bottom — a folder of documents in, a searchable
summary-vector store out. ``ragcompress index`` (ragcompress/commands/index.py) only parses its options
and calls this.

    walk + read the corpus (walk.py, readers.py) ─▶ nothing changed? stop before loading models (uptodate.py)
        ─▶ start the engine: compressor + embedder (engines/) ─▶ open the store (ragcompress.store.Store)
        ─▶ chunk, embed, compress and commit what changed, group by group (chunker.py, write.py)
        ─▶ IndexReport (report.py)

A killed run keeps every group it committed and a re-run redoes only what is missing. Everything that
decides the store's contents happens here, in corpus order, whatever the engine; engines only compute
embeddings and summary vectors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from indexing.chunker import validate_chunking
from indexing.engines import CompressorSource, EmbedderSource, Engine, EngineError, make_engine
from indexing.progress import ProgressReporter, RichProgress
from indexing.readers import CorpusError, read_corpus
from indexing.report import IndexReport
from indexing.uptodate import up_to_date
from indexing.write import DEFAULT_COMMIT_CHUNKS, DEFAULT_COMMIT_EVERY, CommitInfo, StoreUpdate
from ragcompress.paths import default_index_dir
from ragcompress.store import (
    VECTOR_DTYPES,
    ChunkingInfo,
    CompressorInfo,
    EmbedderInfo,
    FaissInfo,
    Store,
    StoreError,
    StoreLockedError,
    new_manifest,
)
from ragcompress.store.manifest import FAISS_KINDS


class IndexingError(Exception):
    """A problem with the user's input or settings, as one line they can act on."""


class EmptyCorpusError(IndexingError):
    """The corpus holds no readable document; no index is created or changed."""


def index_corpus(
    corpus: str | Path,
    index_dir: str | Path | None = None,
    model: CompressorSource = None,
    embedder: EmbedderSource = None,
    chunk_tokens: int = 512,
    overlap: int = 64,
    vector_dtype: str = "fp16",
    faiss_kind: str = "flat",
    engine: str | Engine = "local",
    device: str | None = None,
    rebuild: bool = False,
    batch_size: int | None = None,
    commit_every: int = DEFAULT_COMMIT_EVERY,
    commit_chunks: int = DEFAULT_COMMIT_CHUNKS,
    progress: bool | ProgressReporter = True,
    workers: int | None = None,
    on_commit: Callable[[CommitInfo], None] | None = None,
    follow_links: bool = False,
) -> IndexReport:
    """Index (or update the index of) ``corpus``; see docs/indexing.md.

    ``model``/``embedder`` are specs (None = the embedded defaults, a path, an HF id) or loaded
    ``(model, tokenizer, ModelInfo)`` / ``(SentenceTransformer, id)`` tuples (local engine only).
    ``engine`` is "local", "ray" or an ``Engine`` instance (which then holds the models and device).
    ``follow_links`` also reads symbolic links that lead out of the corpus (by default they are skipped
    and reported). ``batch_size`` defaults to 32 chunks on a GPU and 8 on CPU. Raises ``IndexingError`` (and
    ``StoreMismatchError`` / ``StoreLockedError`` from the store) with one-line messages.
    """
    started = time.perf_counter()
    _validate(
        chunk_tokens, overlap, vector_dtype, faiss_kind, batch_size, commit_every, commit_chunks, workers
    )
    corpus = Path(corpus).expanduser()
    index_dir = Path(index_dir).expanduser() if index_dir is not None else default_index_dir(corpus)
    if index_dir.is_symlink():  # a rebuild replaces the folder the link names and keeps the link
        index_dir = index_dir.resolve()
    reporter = progress if isinstance(progress, ProgressReporter) else RichProgress() if progress else None
    reporter = reporter or ProgressReporter()
    timings = dict.fromkeys(("read", "load", "chunk", "embed", "compress", "write"), 0.0)

    with reporter:
        reporter.stage("reading")
        try:
            read = read_corpus(corpus, follow_links=follow_links)
        except CorpusError as error:
            raise IndexingError(str(error)) from None
        read.skipped = [s for s in read.skipped if not _inside(s.path, corpus, index_dir)]
        reporter.set_total("reading", len(read.documents) + len(read.skipped))
        reporter.advance("reading", len(read.documents) + len(read.skipped))
        timings["read"] = time.perf_counter() - started
        if not read.documents:
            # Refuse rather than empty an existing index: an unmounted or mistyped folder looks the same.
            raise EmptyCorpusError(f"{read.summary()}; nothing to index")
        _probe_index_dir(index_dir, rebuild)
        # An engine object holds its models already; for specs, check before spending time loading them.
        if not rebuild and not isinstance(engine, Engine):
            settings = (chunk_tokens, overlap, vector_dtype, faiss_kind)
            stats = up_to_date(index_dir, read.documents, model, embedder, settings)
            if stats is not None:  # nothing to do, and no model was loaded to find that out
                seconds = time.perf_counter() - started
                nothing = dict.fromkeys(("added", "changed", "removed", "chunks", "tokens", "commits"), 0)
                return IndexReport(
                    index_dir=index_dir,
                    corpus=corpus,
                    engine=str(engine),
                    unchanged=len(read.documents),
                    skipped=list(read.skipped),
                    seconds=seconds,
                    chunks_per_second=0.0,
                    stats=stats,
                    timings=timings,
                    **nothing,
                )

        loading = time.perf_counter()
        owned = not isinstance(engine, Engine)
        try:
            worker = make_engine(engine, model, embedder, device, workers) if owned else engine
        except EngineError as error:
            raise IndexingError(str(error)) from None
        try:
            models = worker.start()
            timings["load"] = time.perf_counter() - loading
            manifest = new_manifest(
                compressor=CompressorInfo(**asdict(models.compressor)),
                embedder=EmbedderInfo(models.embedder_id, models.embedder_dim),
                vector_dtype=vector_dtype,
                chunking=ChunkingInfo(chunk_tokens, overlap, _tokenizer_name(models.tokenizer)),
                faiss=FaissInfo(kind=faiss_kind),
            )
            if batch_size is None:
                batch_size = 32 if _on_gpu(device) else 8
            run = StoreUpdate(
                worker,
                models.tokenizer,
                reporter,
                timings,
                on_commit,
                batch_size,
                chunking=(chunk_tokens, overlap),
                limits=(commit_every, commit_chunks),
            )
            with Store.open_or_create(index_dir, manifest, rebuild=rebuild) as store:
                unreadable = [s.path for s in read.skipped if s.unreadable]
                counts = run.update(store, read.documents, unreadable)
                stats = store.stats()
        except EngineError as error:  # models that will not load, or a worker failing mid-run
            raise IndexingError(str(error)) from None
        finally:
            if owned:
                worker.close()

    seconds = time.perf_counter() - started
    return IndexReport(
        index_dir=index_dir,
        corpus=corpus,
        engine=worker.name,
        skipped=list(read.skipped),
        seconds=seconds,
        chunks_per_second=run.chunks_done / seconds if seconds > 0 else 0.0,
        chunks=run.chunks_done,
        tokens=run.tokens_done,
        commits=run.commits,
        stats=stats,
        timings=timings,
        **counts,
    )


def _validate(
    chunk_tokens: int,
    overlap: int,
    vector_dtype: str,
    faiss_kind: str,
    batch_size: int | None,
    commit_every: int,
    commit_chunks: int,
    workers: int | None,
) -> None:
    try:
        validate_chunking(chunk_tokens, overlap)
    except ValueError as error:
        raise IndexingError(str(error)) from None
    if vector_dtype not in VECTOR_DTYPES:
        raise IndexingError(f"vector dtype {vector_dtype!r} is not one of {', '.join(VECTOR_DTYPES)}")
    if faiss_kind not in FAISS_KINDS:
        raise IndexingError(f"faiss index kind {faiss_kind!r} is not one of {', '.join(FAISS_KINDS)}")
    for name, value in (
        ("batch_size", batch_size),
        ("commit_every", commit_every),
        ("commit_chunks", commit_chunks),
        ("workers", workers),
    ):
        if value is not None and value < 1:
            raise IndexingError(f"{name}={value} must be at least 1")


def _probe_index_dir(index_dir: Path, rebuild: bool) -> None:
    """Fail before loading models when the index cannot be written anyway. Nothing is written into a
    folder that is not provably an index (not even the lock file)."""
    try:
        Store.probe_writable(index_dir, rebuild)
    except StoreLockedError:
        raise  # "busy" in a second, not after the models load; callers report it as is
    except StoreError as error:
        raise IndexingError(str(error)) from None


def _inside(relative: str, corpus: Path, index_dir: Path) -> bool:
    """Whether a corpus-relative path lies in the index directory. An index kept inside its corpus is
    not made of documents, and listing its files as skipped would only be noise."""
    try:
        inner = index_dir.resolve().relative_to(corpus.resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):
        return False
    return relative == inner or relative.startswith(inner + "/")


def _tokenizer_name(tokenizer) -> str:
    name = str(getattr(tokenizer, "name_or_path", "") or "").rstrip("/")
    if name and Path(name).exists():
        # The folder name, not the full path: the same tokenizer cached under another home is the same.
        return Path(name).name
    return name or type(tokenizer).__name__


def _on_gpu(device: str | None) -> bool:
    return device != "cpu" and (
        str(device).startswith("cuda") or (device is None and torch.cuda.is_available())
    )
