"""Kill-and-resume and concurrent writers, with real processes: `index` runs in a subprocess that is
SIGKILLed after its 1st, 2nd and 3rd commit; each re-run resumes, and the final store equals a clean
build's (documents, chunks, chunk ids, vectors, search results), with no chunk lost or duplicated."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from indexing.pipeline import index_corpus
from indexing.readers import read_corpus
from ragcompress.store import Store
from tests.indexing import index_child
from tests.indexing import pipeline_helpers as helpers
from tests.indexing.cli_app import app
from tests.indexing.pipeline_helpers import CHUNK_TOKENS, OVERLAP, assert_same_store, snapshot, write_corpus

private_data_root, tiny_compressor_dir = helpers.private_data_root, helpers.tiny_compressor_dir

TIMEOUT = 120


@pytest.fixture(scope="module")
def fork_context():
    """A forkserver that imported the pipeline once; each child is a fork of it (see index_child)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.indexing.index_child"])
    return context


def start_child(context, corpus: Path, index: Path, model: Path, hold: float = 0.0):
    parent, child_end = context.Pipe(duplex=False)
    child = context.Process(
        target=index_child.index_child,
        args=(str(corpus), str(index), str(model), hold, child_end),
        daemon=True,
    )
    child.start()
    child_end.close()
    return child, parent


def wait_for_commits(child, conn, commits: int) -> None:
    """Wait until the child has committed ``commits`` times (in this run)."""
    seen = []
    while sum(message[0] == "committed" for message in seen) < commits:
        if not conn.poll(TIMEOUT):
            raise AssertionError(f"no commit from the child within {TIMEOUT} s: {seen}")
        try:
            seen.append(conn.recv())
        except EOFError:
            raise AssertionError(
                f"child exited ({child.exitcode}) before {commits} commits: {seen}"
            ) from None


def committed_prefix(index: Path, order: list[str]) -> list[str]:
    """The committed documents, which must be a prefix of the corpus order (whole documents only)."""
    with Store.open(index) as store:
        assert store.check() == []
        done = sorted(d.doc_id for d in store.documents())
        for doc in store.documents():
            assert len(store.get_chunks([c for c in store._meta.chunk_ids_of([doc.doc_id])])) == doc.n_chunks
    assert done == sorted(order[: len(done)]), "documents must be committed in corpus order"
    return done


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = write_corpus(tmp_path_factory.mktemp("crash") / "corpus")
    return write_corpus(root, seed=1, suffix="-2")  # 12 documents: more than the runs below commit


def test_killed_runs_resume_to_a_clean_build(tmp_path, fork_context, corpus, tiny_compressor_dir):
    order = [doc.doc_id for doc in read_corpus(corpus).documents]  # the order documents are indexed in
    index = tmp_path / "index"
    done: list[str] = []
    for commits in (1, 2, 3):
        child, conn = start_child(fork_context, corpus, index, tiny_compressor_dir)
        wait_for_commits(child, conn, commits)
        os.kill(child.pid, signal.SIGKILL)  # lands while the next document is being processed or committed
        child.join(TIMEOUT)
        assert child.exitcode == -signal.SIGKILL
        now = committed_prefix(index, order)
        assert len(now) >= len(done) + commits  # each run resumed where the last one stopped
        done = now
    assert len(done) < len(order)

    report = index_corpus(
        corpus,
        index,
        model=tiny_compressor_dir,
        chunk_tokens=CHUNK_TOKENS,
        overlap=OVERLAP,
        commit_every=1,
        progress=False,
    )
    assert report.added == len(order) - len(done) and report.unchanged == len(done)
    clean = tmp_path / "clean"
    index_corpus(
        corpus,
        clean,
        model=tiny_compressor_dir,
        chunk_tokens=CHUNK_TOKENS,
        overlap=OVERLAP,
        commit_every=1,
        progress=False,
    )
    resumed, reference = snapshot(Store.open(index)), snapshot(Store.open(clean))
    assert_same_store(resumed, reference)
    assert resumed["ids"] == reference["ids"]  # chunk ids continue exactly: nothing lost or duplicated
    assert Store.open(index).check() == []
    assert {p.name for p in (index / "vectors").iterdir()} == {
        r["name"] for r in Store.open(index)._meta.shard_rows()
    }


def test_second_writer_process_is_refused(tmp_path, fork_context, corpus, tiny_compressor_dir):
    from typer.testing import CliRunner

    index = tmp_path / "index"
    child, conn = start_child(fork_context, corpus, index, tiny_compressor_dir, hold=60)
    try:
        wait_for_commits(child, conn, 1)  # now sleeping inside the run, holding the writer lock
        runner = CliRunner()
        result = runner.invoke(
            app, ["index", str(corpus), "--index", str(index), "--model", str(tiny_compressor_dir)]
        )
        assert result.exit_code == 2
        assert "another process" in result.output and f"pid {child.pid}" in result.output
        assert "Traceback" not in result.output
        # Readers are not blocked by a writer.
        info = runner.invoke(app, ["info", str(index), "--json"])
        assert info.exit_code == 0 and '"documents": 1' in info.output
    finally:
        child.kill()
        child.join(TIMEOUT)
