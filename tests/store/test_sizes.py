"""An index's size is counted from what it committed: the same figure while a writer's pages sit in SQLite's
WAL and after they are checkpointed, whatever lock or -shm files lie beside it."""

from __future__ import annotations

import sqlite3

from ragcompress.store import Store
from ragcompress.store.sizes import committed_disk_bytes
from tests.store.helpers import add, build, make_doc


def committed_files(path) -> int:
    """The files of a checkpointed store: manifest, SQLite database, FAISS index, vector shards."""
    files = [
        path / "manifest.json",
        path / "meta.sqlite",
        path / "faiss.index",
        *(path / "vectors").iterdir(),
    ]
    return sum(f.stat().st_size for f in files)


def test_disk_bytes_are_the_committed_files_before_and_after_a_checkpoint(tmp_path):
    path = tmp_path / "store"
    build(path, [make_doc(i) for i in range(3)]).close()
    reader = Store.open(path)  # an open reader: the next commit stays in the WAL, not in meta.sqlite
    with Store.open(path, readonly=False) as store, store.begin_update() as writer:
        add(writer, make_doc(7))
    assert (path / "meta.sqlite-wal").stat().st_size > 0
    in_wal = committed_disk_bytes(reader._state)
    reader.close()
    with sqlite3.connect(path / "meta.sqlite") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert in_wal == committed_files(path)
    with Store.open(path) as again:
        assert committed_disk_bytes(again._state) == in_wal  # nothing changed, nothing moves


def test_an_update_with_nothing_to_do_leaves_the_figure_alone(tmp_path):
    path = tmp_path / "store"
    build(path, [make_doc(i) for i in range(2)]).close()
    with Store.open(path) as store:
        before = committed_disk_bytes(store._state)
    with Store.open(path, readonly=False) as store, store.begin_update():
        pass  # a re-run that finds every document up to date
    (path / "stray.tmp").write_bytes(b"x" * 4096)  # not the store's: not counted
    with Store.open(path) as store:
        assert committed_disk_bytes(store._state) == before
