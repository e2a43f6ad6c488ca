"""The LangChain retriever returns what `Retriever.search` finds, from invoke, batch and ainvoke."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document  # noqa: E402

from ragcompress.integrations.langchain import RagcompressRetriever  # noqa: E402
from tests.integrations.conftest import QUERY  # noqa: E402


@pytest.fixture
def retriever(adapter_index, models):
    opened = RagcompressRetriever.from_index(adapter_index, k=3, **models)
    yield opened
    opened.close()


def test_invoke_returns_the_search_passages_as_documents(retriever, reference):
    docs = retriever.invoke(QUERY)
    expected = reference.search(QUERY, k=3)
    assert [type(d) for d in docs] == [Document] * 3
    assert [d.page_content for d in docs] == [p.text for p in expected]
    assert [d.metadata["source"] for d in docs] == [p.doc_id for p in expected] and docs[0].metadata[
        "source"
    ] == "astronomy"
    assert [d.metadata["chunk_id"] for d in docs] == [p.chunk_id for p in expected]
    assert [d.metadata["score"] for d in docs] == pytest.approx([p.score for p in expected], abs=1e-5)
    assert docs[0].id == f"astronomy#{expected[0].chunk_id}"
    span = docs[0].metadata
    assert reference.store.document("astronomy") is not None and span["char_end"] > span["char_start"]


def test_batch_and_ainvoke_from_other_threads(retriever):
    # LangChain runs these in thread pools; the index's SQLite connection stays in the searcher's thread
    queries = [QUERY, "How does the knight move?", "What do bees make?"]
    batched = retriever.batch(queries)
    assert [docs[0].metadata["source"] for docs in batched[:1]] == ["astronomy"]
    assert [[d.page_content for d in docs] for docs in batched] == [
        [d.page_content for d in retriever.invoke(q)] for q in queries
    ]
    docs = asyncio.run(retriever.ainvoke(QUERY))
    assert [d.page_content for d in docs] == [d.page_content for d in retriever.invoke(QUERY)]


def test_k_is_respected_and_checked(adapter_index, models):
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        RagcompressRetriever(searcher=None, k=-1)  # refused before anything is opened
    one = RagcompressRetriever.from_index(adapter_index, k=1, **models)
    try:
        assert len(one.invoke(QUERY)) == 1
    finally:
        one.close()
