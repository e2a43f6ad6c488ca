"""A small real index (tiny random compressor, real default embedder) and a plain Retriever to compare with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from indexing.pipeline import index_corpus
from ragcompress.retrieval import Retriever
from tests.indexing import pipeline_helpers as helpers

private_data_root, tiny_compressor_dir, tiny_models = (
    helpers.private_data_root,
    helpers.tiny_compressor_dir,
    helpers.tiny_models,
)
QUERY = "Which planet has the Great Red Spot?"


@pytest.fixture(scope="session")
def adapter_index(tmp_path_factory, tiny_models) -> Path:
    root = tmp_path_factory.mktemp("integrations")
    compressor, embedder = tiny_models
    index_corpus(
        helpers.write_corpus(root / "corpus"), root / "index", model=compressor, embedder=embedder,
        chunk_tokens=helpers.CHUNK_TOKENS, overlap=helpers.OVERLAP, progress=False,
    )  # fmt: skip
    return root / "index"


@pytest.fixture(scope="session")
def reference(adapter_index, tiny_models) -> Iterator[Retriever]:
    compressor, embedder = tiny_models
    with Retriever(adapter_index, model=compressor, embedder=embedder) as opened:
        yield opened


@pytest.fixture
def models(tiny_models) -> dict:
    compressor, embedder = tiny_models
    return {"model": compressor, "embedder": embedder}
