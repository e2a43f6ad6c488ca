"""The LlamaIndex retriever returns what `Retriever.search` finds, as scored text nodes."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

from ragcompress.integrations.llamaindex import RagcompressRetriever  # noqa: E402
from tests.integrations.conftest import QUERY  # noqa: E402


@pytest.fixture
def retriever(adapter_index, models):
    opened = RagcompressRetriever.from_index(adapter_index, k=3, **models)
    yield opened
    opened.close()


def test_retrieve_returns_the_search_passages_as_scored_nodes(retriever, reference):
    nodes = retriever.retrieve(QUERY)
    expected = reference.search(QUERY, k=3)
    assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert [n.node.text for n in nodes] == [p.text for p in expected]
    assert [n.score for n in nodes] == pytest.approx([p.score for p in expected], abs=1e-5)
    assert nodes[0].node.metadata["source"] == "astronomy" == expected[0].doc_id
    assert nodes[0].node.node_id == f"astronomy#{expected[0].chunk_id}"
    assert [n.node.metadata["char_start"] for n in nodes] == [p.char_start for p in expected]


def test_aretrieve_and_a_k_of_zero(retriever, adapter_index, models):
    nodes = asyncio.run(retriever.aretrieve(QUERY))
    assert [n.node.text for n in nodes] == [n.node.text for n in retriever.retrieve(QUERY)]
    with pytest.raises(ValueError, match="k=-1"):
        RagcompressRetriever(searcher=None, k=-1)
    none = RagcompressRetriever.from_index(adapter_index, k=0, **models)
    try:
        assert none.retrieve(QUERY) == []
    finally:
        none.close()
