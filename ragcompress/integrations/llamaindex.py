"""A LlamaIndex retriever over a ragcompress index (the ``llamaindex`` extra: llama-index-core).

    from ragcompress.integrations.llamaindex import RagcompressRetriever
    retriever = RagcompressRetriever.from_index("idx/", k=4)
    nodes = retriever.retrieve("Who founded Pelville?")   # list[NodeWithScore], most relevant first

Each node is a ``TextNode`` with a passage's text and, as metadata, the document id (``source``,
``doc_id``), chunk id, character span and retrieval score (also the node's ``score``). It plugs into
LlamaIndex wherever a retriever goes, e.g. ``RetrieverQueryEngine.from_args(retriever, llm=...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from ragcompress.integrations.searcher import IndexSearcher, passage_metadata


class RagcompressRetriever(BaseRetriever):
    """The ``k`` passages of the index most relevant to a query, as LlamaIndex ``NodeWithScore``s."""

    def __init__(self, searcher: IndexSearcher, k: int = 5, **kwargs: Any) -> None:
        if k < 0:
            raise ValueError(f"k={k} must be ≥ 0")
        self.searcher, self.k = searcher, k
        super().__init__(**kwargs)

    @classmethod
    def from_index(cls, index_dir: str | Path, k: int = 5, **retriever_kwargs: Any) -> RagcompressRetriever:
        """Open the index and load the models it names (``retriever_kwargs`` go to ``Retriever``)."""
        return cls(IndexSearcher(index_dir, **retriever_kwargs), k=k)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [
            NodeWithScore(
                node=TextNode(text=p.text, id_=f"{p.doc_id}#{p.chunk_id}", metadata=passage_metadata(p)),
                score=p.score,
            )
            for p in self.searcher.search(query_bundle.query_str, self.k)
        ]

    def close(self) -> None:
        self.searcher.close()
