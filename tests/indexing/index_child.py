"""The child process of the kill-and-resume and concurrency tests.

The tests start it through a forkserver that has imported this module (and so torch, transformers and
sentence-transformers) once; each child is then a cheap fork that runs ``index_child`` and can be
SIGKILLed like any indexing process. It indexes one document per commit and sends
``("committed", generation, documents done)`` after each commit. ``hold`` sleeps after the first commit
while still holding the writer lock.
"""

from __future__ import annotations

import time

import sentence_transformers  # noqa: F401 - preloaded by the forkserver, see above

from indexing.pipeline import CommitInfo, index_corpus
from tests.indexing.pipeline_helpers import CHUNK_TOKENS, OVERLAP


def index_child(corpus: str, index: str, model: str, hold: float, conn) -> None:
    def on_commit(info: CommitInfo) -> None:
        conn.send(("committed", info.generation, info.documents_done))
        if hold:
            time.sleep(hold)

    index_corpus(
        corpus,
        index,
        model=model,
        chunk_tokens=CHUNK_TOKENS,
        overlap=OVERLAP,
        commit_every=1,
        progress=False,
        on_commit=on_commit,
    )
    conn.send(("done",))
