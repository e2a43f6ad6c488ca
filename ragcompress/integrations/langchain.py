"""A LangChain retriever over a ragcompress index (the ``langchain`` extra: langchain-core).

    from ragcompress.integrations.langchain import RagcompressRetriever
    retriever = RagcompressRetriever.from_index("idx/", k=4)
    docs = retriever.invoke("Who founded Pelville?")   # list[Document], most relevant first

Each ``Document`` holds a passage's text; its metadata the document id (``source``, ``doc_id``), chunk
id, character span and retrieval score. ``invoke``, ``batch`` and ``ainvoke`` all work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from ragcompress.integrations.searcher import IndexSearcher, passage_metadata


class RagcompressRetriever(BaseRetriever):
    """The ``k`` passages of the index most relevant to a query, as LangChain ``Document``s."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    searcher: IndexSearcher
    k: int = Field(5, ge=0)

    @classmethod
    def from_index(cls, index_dir: str | Path, k: int = 5, **retriever_kwargs: Any) -> RagcompressRetriever:
        """Open the index and load the models it names (``retriever_kwargs`` go to ``Retriever``)."""
        return cls(searcher=IndexSearcher(index_dir, **retriever_kwargs), k=k)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(page_content=p.text, metadata=passage_metadata(p), id=f"{p.doc_id}#{p.chunk_id}")
            for p in self.searcher.search(query, self.k)
        ]

    def close(self) -> None:
        self.searcher.close()
