"""Code the multi-process store tests run in child processes (forked from a preloaded forkserver).

The children must start fast: importing ``ragcompress`` pulls in transformers through the package
``__init__``, which the store does not need. A fresh interpreter therefore gets a bare package module
whose ``__path__`` points at the source tree, so ``import ragcompress.store`` loads only the store.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import types
from pathlib import Path

if "ragcompress" not in sys.modules:
    _package = types.ModuleType("ragcompress")
    _package.__path__ = [str(Path(__file__).resolve().parents[2] / "ragcompress")]
    sys.modules["ragcompress"] = _package

import sqlite_utils.db  # noqa: E402

import ragcompress.store.writer as writer_module  # noqa: E402
from ragcompress.store import Store, StoreLockedError  # noqa: E402
from ragcompress.store.faiss_index import VectorIndex  # noqa: E402
from tests.store.helpers import add, make_doc, make_manifest  # noqa: E402

N_DOCS = 12
_commits = 0


def write_documents(path: str, n_docs: int = N_DOCS, conn=None) -> None:
    """Add documents 0..n_docs-1 that the store lacks, one commit each (so a kill lands between or
    inside commits). Used for the clean build, the killed runs and the resumed runs alike."""
    global _commits
    store = Store.open_or_create(Path(path), make_manifest("int8"))
    try:
        with store.begin_update() as writer:
            present = {d.doc_id for d in store.documents()}
            if conn is not None:
                conn.send("ready")
            for i in range(n_docs):
                doc = make_doc(i)
                if doc.doc_id in present:
                    continue
                _commits += 1
                add(writer, doc)
                writer.commit()
                if conn is not None:
                    conn.send(i)
    finally:
        store.close()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _after(function, when):
    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        if when(*args):
            _die()
        return result

    return wrapper


def _before(function, when):
    def wrapper(*args, **kwargs):
        if when(*args):
            _die()
        return function(*args, **kwargs)

    return wrapper


def crash_during(path: str, phase: str, at_commit: int, conn) -> None:
    """Run ``write_documents`` and SIGKILL ourselves at ``phase`` of commit number ``at_commit``."""
    arm_crash(phase, lambda: _commits == at_commit)
    write_documents(path, N_DOCS, conn)
    conn.send("done")


# Where in commit() a crash lands (arm_crash): after the new shard file is written, inside the SQLite
# transaction, after it (before faiss.index is rewritten), after faiss.index, after the manifest counts.
PHASES = ("shard-written", "in-transaction", "before-index", "index-written", "counts-written")


def arm_crash(phase: str, armed) -> None:
    """SIGKILL this process at ``phase`` of the first commit during which ``armed()`` is true.

    Shared with the indexing crash tests (tests/indexing/index_child.py), which arm it by commit count."""
    now = lambda *args: armed()  # noqa: E731
    if phase == "shard-written":  # a complete shard file exists, nothing refers to it
        writer_module.write_shard = _after(writer_module.write_shard, now)
    elif phase == "in-transaction":  # every row of the commit is inserted, COMMIT not yet run
        table_insert = sqlite_utils.db.Table.insert
        sqlite_utils.db.Table.insert = _before(
            table_insert, lambda table, *a: now() and table.name == "commits"
        )
    elif phase == "before-index":  # SQLite committed, faiss.index still the previous generation
        writer_module.StoreWriter._update_index = _before(writer_module.StoreWriter._update_index, now)
    elif phase == "index-written":  # faiss.index current, manifest counts one generation behind
        VectorIndex.save = _after(VectorIndex.save, now)
    elif phase == "counts-written":  # everything written, the writer not yet reset
        writer_module.write_manifest = _after(writer_module.write_manifest, now)
    else:
        raise ValueError(phase)


def run_until_killed(path: str, conn) -> None:
    write_documents(path, N_DOCS, conn)
    conn.send("done")
    time.sleep(120)  # on a loaded machine the kill may come late; it must still find us alive


def hold_lock(path: str, conn) -> None:
    store = Store.open(path, readonly=False)
    store.begin_update()
    conn.send(os.getpid())
    time.sleep(120)


def try_lock(path: str, conn) -> None:
    try:
        Store.open(path, readonly=False).begin_update().close()
        conn.send("acquired")
    except StoreLockedError as error:
        conn.send(str(error))
