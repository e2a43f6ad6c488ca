"""A small real index built with the default compressor and embedder, once per test session.

It goes through the real indexing pipeline (`indexing.pipeline.index_corpus`) with the models loaded
once here. The chunk size is small enough that most sentences become chunks of their own, so the
documents below give a handful of chunks with one obvious best passage per question.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from indexing.pipeline import index_corpus
from ragcompress import Compressor, Embedder
from ragcompress.retrieval import Retriever
from ragcompress.store import Store, new_manifest

CHUNK_TOKENS = 24
# doc_id -> text: short, distinct, invented facts
DOCUMENTS = {
    "pelville": "Pelville is a small harbour town on the Grey Sea. "
    "Pelville was founded in 1623 by the fisherman Tomas Varro.\n",
    "zarnok": "The Zarnok river rises in the Karth Mountains. It flows east into Lake Ombra.\n",
    "ilsen": "Mount Ilsen is the highest peak of the Karth Mountains. Ada Brenner first climbed it in 1891.\n",
    "saltwind": "The Saltwind was a cargo ship built in 1802. She sank off Cape Morrow in 1830.\n",
    "quillon": "Quillon Works is a company that makes brass telescopes in the town of Dunmere.\n",
}


@pytest.fixture(scope="session")
def default_models():
    """``(Compressor, Embedder)``: the defaults, loaded once, on CPU."""
    return Compressor.load("default", device="cpu"), Embedder.load("default", device="cpu")


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory, default_models) -> Path:
    root = tmp_path_factory.mktemp("retrieval")
    corpus = root / "corpus"
    corpus.mkdir()
    for doc_id, text in DOCUMENTS.items():
        (corpus / f"{doc_id}.txt").write_text(text, encoding="utf-8")
    compressor, embedder = default_models
    index_corpus(
        corpus,
        root / "index",
        model=compressor,
        embedder=embedder,
        chunk_tokens=CHUNK_TOKENS,
        overlap=0,
        progress=False,
    )
    return root / "index"


@pytest.fixture(scope="session")
def n_chunks(index_dir) -> int:
    with Store.open(index_dir) as store:
        return store.stats().chunks


@pytest.fixture(scope="session")
def empty_index_dir(tmp_path_factory, default_models) -> Path:
    """An index of the default models with nothing in it (the pipeline refuses an empty corpus)."""
    compressor, embedder = default_models
    path = tmp_path_factory.mktemp("empty") / "index"
    manifest = new_manifest(compressor=compressor.info, embedder=embedder.info)
    Store.create(path, manifest).close()
    return path


@pytest.fixture(scope="session")
def retriever(index_dir, default_models) -> Retriever:
    compressor, embedder = default_models
    with Retriever(index_dir, model=compressor, embedder=embedder) as opened:
        yield opened
