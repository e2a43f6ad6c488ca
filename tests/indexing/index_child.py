"""The child processes of the indexing crash tests, and the parent's side of starting and following them.

The tests start children through a forkserver that has imported this module (and so torch, transformers
and sentence-transformers) once; each child is then a cheap fork that can be SIGKILLed like any
indexing process. ``index_child`` indexes and sends ``("committed", generation, documents done)`` after
each commit; ``reader_child`` searches and answers over the index in a loop while others write to it.
"""

from __future__ import annotations

import time
from pathlib import Path

import sentence_transformers  # noqa: F401 - preloaded by the forkserver, see above

from indexing import write
from indexing.pipeline import CommitInfo, index_corpus
from ragcompress.store.layout import is_store
from tests.indexing.pipeline_helpers import CHUNK_TOKENS, OVERLAP
from tests.store.writer_child import arm_crash

TIMEOUT = 120
QUESTIONS = ["Where does the river Alder rise?", "How does the knight move?", "What do worker bees do?"]


def index_child(corpus: str, index: str, model: str, hold: float, options: dict | None, conn) -> None:
    """``options`` are ``index_corpus`` keywords (the default commits one document at a time), plus
    ``crash=(phase, n)``: SIGKILL at that phase (see tests/store/writer_child.py) of this run's n-th
    commit, n ≥ 2; and ``small_groups=True``: commit groups stay at ``commit_chunks`` chunks instead of
    growing with the measured throughput, so a long document spans several of them. ``hold`` sleeps
    after the first commit while still holding the writer lock."""
    options = {"commit_every": 1, **(options or {})}
    commits = 0

    def on_commit(info: CommitInfo) -> None:
        nonlocal commits
        commits += 1
        conn.send(("committed", info.generation, info.documents_done))
        if hold:
            time.sleep(hold)

    crash = options.pop("crash", None)
    if crash is not None:
        phase, at = crash
        arm_crash(phase, lambda: commits == at - 1)
    if options.pop("small_groups", False):
        write.TARGET_COMMIT_SECONDS = 0.0
    index_corpus(
        corpus,
        index,
        model=model,
        chunk_tokens=CHUNK_TOKENS,
        overlap=OVERLAP,
        progress=False,
        on_commit=on_commit,
        **options,
    )
    conn.send(("done",))


def reader_child(index: str, conn) -> None:
    """Search (and every tenth time answer) over ``index`` until the parent sends anything; then send
    back ``(searches, answers, errors)``, each error as one line. Opens the index once it exists.

    Searches dominate because a commit must land inside one read to show a race, and a search is
    cheap; answers (generation) cover the vector reads."""
    from ragcompress.retrieval import Retriever

    while not is_store(Path(index)):
        time.sleep(0.05)
    searches, answers, errors = 0, 0, []
    with Retriever(index) as retriever:  # the models the index names: the tests' tiny ones
        conn.send("ready")
        while not conn.poll():
            question = QUESTIONS[(searches + answers) % len(QUESTIONS)]
            try:
                if (searches + answers) % 10 == 9:
                    retriever.answer(question, k=2, mode="fused", max_new_tokens=2)
                    answers += 1
                else:
                    retriever.search(question, k=3)
                    searches += 1
            except Exception as error:  # every kind counts: the test asserts there are none
                errors.append(f"{type(error).__name__}: {error}")
    conn.send((searches, answers, errors))


def start_child(context, target, *args, duplex: bool = False):
    """``target(*args, conn)`` in a forked child; returns the process and the parent's end of the pipe."""
    parent, child_end = context.Pipe(duplex=duplex)
    child = context.Process(target=target, args=(*args, child_end), daemon=True)
    child.start()
    child_end.close()
    return child, parent


def start_indexing(context, corpus: Path, index: Path, model: Path, hold: float = 0.0, options=None):
    return start_child(context, index_child, str(corpus), str(index), str(model), hold, options)


def wait_for_commits(child, conn, commits: int, or_end: bool = False) -> list:
    """Wait until the child has committed ``commits`` times (in this run) — or, with ``or_end``, has
    finished or exited first; returns its messages."""
    seen = []
    while sum(message[0] == "committed" for message in seen) < commits:
        if not conn.poll(TIMEOUT):
            raise AssertionError(f"no commit from the child within {TIMEOUT} s: {seen}")
        try:
            seen.append(conn.recv())
        except EOFError:
            if or_end:
                return seen
            raise AssertionError(
                f"child exited ({child.exitcode}) before {commits} commits: {seen}"
            ) from None
        if or_end and seen[-1] == ("done",):
            return seen
    return seen


def drain(conn) -> list:
    """Every message a finished (or killed) child sent and nobody read yet."""
    messages = []
    try:
        while conn.poll():
            messages.append(conn.recv())
    except EOFError:
        pass
    return messages
