"""``IndexSearcher``: a Retriever that lives in one thread of its own, so a framework may search from any thread.

Frameworks call retrievers from thread pools (LangChain's ``batch`` and ``ainvoke``), but an index's
SQLite connection belongs to the thread that opened it. The searcher opens the Retriever in a
single-thread executor and runs every search there, one at a time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ragcompress.retrieval import Passage, Retriever


class IndexSearcher:
    """``search(query, k)`` over the index at ``index_dir``; ``retriever_kwargs`` go to ``Retriever``
    (``model``, ``embedder``, ``device``: loaded objects or specs)."""

    def __init__(self, index_dir: str | Path, **retriever_kwargs: Any) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragcompress-search")
        try:
            self.retriever: Retriever = self._executor.submit(
                Retriever, index_dir, **retriever_kwargs
            ).result()
        except BaseException:
            self._executor.shutdown()
            raise

    @property
    def index_dir(self) -> Path:
        return self.retriever.index_dir

    def search(self, query: str, k: int) -> list[Passage]:
        return self._executor.submit(self.retriever.search, query, k).result()

    def close(self) -> None:
        self._executor.submit(self.retriever.close).result()
        self._executor.shutdown()

    def __enter__(self) -> IndexSearcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def passage_metadata(passage: Passage) -> dict[str, Any]:
    """What the frameworks' documents carry besides the text; ``source`` is the document id."""
    return {
        "source": passage.doc_id,
        "doc_id": passage.doc_id,
        "chunk_id": passage.chunk_id,
        "char_start": passage.char_start,
        "char_end": passage.char_end,
        "score": passage.score,
    }
