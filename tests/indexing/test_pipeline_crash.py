"""Kill-and-resume and concurrent writers, with real processes: `index` runs in a subprocess that is
SIGKILLed after its 1st, 2nd and 3rd commit; each re-run resumes, and the final store equals a clean
build's (documents, chunks, chunk ids, vectors, search results), with no chunk lost or duplicated."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from indexing.pipeline import index_corpus
from indexing.readers import read_corpus
from ragcompress.store import Store
from tests.indexing import pipeline_helpers as helpers
from tests.indexing.cli_app import app
from tests.indexing.index_child import TIMEOUT, start_indexing, wait_for_commits
from tests.indexing.pipeline_helpers import CHUNK_TOKENS, OVERLAP, assert_same_store, snapshot, write_corpus

private_data_root, tiny_compressor_dir = helpers.private_data_root, helpers.tiny_compressor_dir


def committed_prefix(index: Path, order: list[str]) -> list[str]:
    """The committed documents, which must be a prefix of the corpus order (whole documents only)."""
    with Store.open(index) as store:
        assert store.check() == []
        done = sorted(d.doc_id for d in store.documents())
        for doc in store.documents():
            assert (
                len(store.get_chunks([c for c in store._state.meta.chunk_ids_of([doc.doc_id])]))
                == doc.n_chunks
            )
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
        child, conn = start_indexing(fork_context, corpus, index, tiny_compressor_dir)
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
        r["name"] for r in Store.open(index)._state.meta.shard_rows()
    }


def test_a_killed_rebuild_keeps_the_old_index_and_the_next_one_goes_on(
    tmp_path, fork_context, corpus, tiny_compressor_dir
):
    order = [doc.doc_id for doc in read_corpus(corpus).documents]
    index, clean = tmp_path / "index", tmp_path / "clean"
    settings = dict(model=tiny_compressor_dir, chunk_tokens=CHUNK_TOKENS, overlap=OVERLAP, progress=False)
    index_corpus(corpus, index, vector_dtype="int8", **settings)
    before = snapshot(Store.open(index))
    child, conn = start_indexing(
        fork_context, corpus, index, tiny_compressor_dir, options={"rebuild": True, "vector_dtype": "fp16"}
    )
    wait_for_commits(child, conn, 2)
    os.kill(child.pid, signal.SIGKILL)
    child.join(TIMEOUT)
    assert child.exitcode == -signal.SIGKILL
    with Store.open(index) as old:  # still the whole int8 index, untouched
        assert old.manifest.vector_dtype == "int8" and old.check() == []
        assert_same_store(snapshot(old), before)

    report = index_corpus(corpus, index, vector_dtype="fp16", rebuild=True, commit_every=1, **settings)
    assert report.unchanged >= 2 and report.added == len(order) - report.unchanged  # went on from its commits
    index_corpus(corpus, clean, vector_dtype="fp16", commit_every=1, **settings)
    with Store.open(index) as rebuilt, Store.open(clean) as reference:
        assert rebuilt.manifest.vector_dtype == "fp16" and rebuilt.check() == []
        resumed, expected = snapshot(rebuilt), snapshot(reference)
    assert_same_store(resumed, expected)
    assert resumed["ids"] == expected["ids"]
    assert not any(p.name.startswith(".index.") for p in tmp_path.iterdir())


def test_second_writer_process_is_refused(tmp_path, fork_context, corpus, tiny_compressor_dir):
    from typer.testing import CliRunner

    index = tmp_path / "index"
    child, conn = start_indexing(fork_context, corpus, index, tiny_compressor_dir, hold=60)
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
