"""An index's size is counted from what it committed: the same figure while a writer's pages sit in SQLite's
WAL and after they are checkpointed, whatever lock or -shm files lie beside it."""

from __future__ import annotations

import sqlite3

from typer.testing import CliRunner

from ragcompress.cli import app
from ragcompress.store import Store
from ragcompress.store.sizes import committed_disk_bytes
from tests.indexing import pipeline_helpers as helpers
from tests.store.helpers import add, build, make_doc

private_data_root, tiny_compressor_dir = helpers.private_data_root, helpers.tiny_compressor_dir


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


def test_index_summary_and_info_print_one_figure_and_whole_paths_when_piped(tmp_path, tiny_compressor_dir):
    corpus = helpers.write_corpus(tmp_path / "corpus", ["chess", "bees"])
    index = tmp_path / ("a-long-folder-name-that-does-not-fit-beside-a-table-title" * 2) / "index"
    runner = CliRunner()  # not a terminal: what `| cat` or a log file receives
    built = runner.invoke(
        app, ["index", str(corpus), "--index", str(index), "--model", str(tiny_compressor_dir)]
    )
    assert built.exit_code == 0, built.output
    described = runner.invoke(app, ["info", str(index)])
    assert described.exit_code == 0, described.output
    summary = next(line for line in built.stdout.splitlines() if "disk bytes per text token" in line)
    row = next(line for line in described.stdout.splitlines() if "bytes per text token" in line)
    with Store.open(index) as store:
        figure = f"{store.stats().disk_bytes_per_token:.1f}"
    assert figure in summary.split("│")[-2] and f"{figure} (disk)" in row
    for printed in (built.stdout, described.stdout):
        assert f"index {index}" in printed.splitlines()  # the path whole, on a line of its own
