"""Fault injection: `index` SIGKILLed at each phase of a commit and at random moments, resumed each time.

The corpus is generated (tests/indexing/fault_helpers.py): version 1 is built, then updated to version 2
(a document changed, one deleted, one added, and a long document rewritten and committed in pieces); the
models are tiny random-weight ones, so each indexing process costs about a second. After every kill the
store passes `info --check` and holds only what a clean build holds (whole documents, or the first
chunks of a long one marked partial); after the resume it equals the clean build: documents, chunk ids,
text, vectors to fp tolerance, search results, nothing duplicated or lost. A reader process searching
and answering all the while sees no error.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from tests.indexing import fault_helpers
from tests.indexing import pipeline_helpers as helpers
from tests.indexing.fault_helpers import (
    assert_check_passes,
    assert_consistent,
    assert_same_as_clean,
    build,
    child_options,
    observe,
    write_version,
)
from tests.indexing.index_child import (
    TIMEOUT,
    drain,
    reader_child,
    start_child,
    start_indexing,
    wait_for_commits,
)
from tests.indexing.pipeline_helpers import assert_same_store, write_corpus
from tests.store.writer_child import PHASES

private_data_root, tiny_compressor_dir = helpers.private_data_root, helpers.tiny_compressor_dir
tiny_embedder_dir, fast_models, clean_builds = (
    helpers.tiny_embedder_dir,
    fault_helpers.fast_models,
    fault_helpers.clean_builds,
)

# The commit that each phase's kill lands in, while building version 1 (7 commits: two of two topic
# documents, four of the long document's pieces, one of the last two documents) and while updating to
# version 2 (6 commits: the deletion, then the changed documents with the long one's pieces, then the
# new one). Together they cover a first piece, middle and last pieces, the deletion and the last commit.
KILL_AT = {
    "shard-written": (4, 2),
    "in-transaction": (3, 1),
    "before-index": (7, 5),
    "index-written": (5, 3),
    "counts-written": (2, 6),
}
RANDOM_KILLS = 3  # per version


def kill_and_check(child, conn, versions: list[dict], index) -> bool:
    """SIGKILL the child now (unless it has already finished) and check what it left; True if killed."""
    child.kill()
    child.join(TIMEOUT)
    conn.close()
    assert child.exitcode in (0, -signal.SIGKILL), child.exitcode
    assert_consistent(index, versions)
    return child.exitcode == -signal.SIGKILL


@pytest.mark.parametrize("phase", PHASES)
def test_kill_at_each_commit_phase(
    tmp_path, fork_context, phase, clean_builds, fast_models, tiny_compressor_dir, tiny_embedder_dir
):
    corpus, index = write_version(tmp_path / "corpus", 1), tmp_path / "index"
    for version, at in zip((1, 2), KILL_AT[phase]):
        write_version(corpus, version)
        options = child_options(tiny_embedder_dir, crash=(phase, at))
        child, conn = start_indexing(fork_context, corpus, index, tiny_compressor_dir, options=options)
        child.join(TIMEOUT)
        assert child.exitcode == -signal.SIGKILL  # killed itself inside commit number `at`
        assert [m[0] for m in drain(conn)] == ["committed"] * (at - 1)
        assert_consistent(index, [clean_builds[v] for v in range(1, version + 1)])
        build(corpus, index, fast_models)  # the resumed run
        assert_same_as_clean(index, clean_builds[version])


def test_kill_at_random_moments(
    tmp_path, fork_context, clean_builds, fast_models, tiny_compressor_dir, tiny_embedder_dir
):
    rng = random.Random(23)
    corpus, index = write_version(tmp_path / "corpus", 1), tmp_path / "index"
    killed = []
    for version in (1, 2):
        write_version(corpus, version)
        versions = [clean_builds[v] for v in range(1, version + 1)]
        for _ in range(RANDOM_KILLS):
            options = child_options(tiny_embedder_dir)
            child, conn = start_indexing(fork_context, corpus, index, tiny_compressor_dir, options=options)
            # After 0 commits: somewhere in starting, reading or the first group; else shortly after a
            # commit, while the next group is computed or committed (commits are milliseconds apart).
            commits = rng.randrange(3)
            wait_for_commits(child, conn, commits, or_end=True)
            time.sleep(rng.uniform(0, 1.5) if commits == 0 else rng.uniform(0, 0.05))
            killed.append(kill_and_check(child, conn, versions, index))
        build(corpus, index, fast_models)
        assert_same_as_clean(index, clean_builds[version])
    assert any(killed)  # at least one kill landed mid-run (in practice nearly all of them)


def test_reader_sees_no_error_during_writes_and_kills(
    tmp_path, fork_context, fast_models, tiny_compressor_dir, tiny_embedder_dir
):
    corpus, index = write_version(tmp_path / "corpus", 1), tmp_path / "index"
    options = child_options(tiny_embedder_dir, commit_every=1)
    writer, conn = start_indexing(fork_context, corpus, index, tiny_compressor_dir, options=options)
    writer.join(TIMEOUT)
    assert writer.exitcode == 0
    reader, reader_conn = start_child(fork_context, reader_child, str(index), duplex=True)
    try:
        assert reader_conn.poll(TIMEOUT) and reader_conn.recv() == "ready"
        # Rounds of updates that rewrite every topic document: each replacement deletes chunks that a
        # reader may just have found, the race a reader must not see. The second round is killed.
        for seed, kill_after in ((11, None), (12, 3), (12, None), (13, None)):
            write_corpus(corpus, seed=seed)
            writer, conn = start_indexing(fork_context, corpus, index, tiny_compressor_dir, options=options)
            if kill_after is None:
                writer.join(TIMEOUT)
                assert writer.exitcode == 0
            else:
                wait_for_commits(writer, conn, kill_after)
                writer.kill()
                writer.join(TIMEOUT)
                assert_check_passes(index)
        reader_conn.send("stop")
        assert reader_conn.poll(TIMEOUT)
        searches, answers, errors = reader_conn.recv()
    finally:
        for process in (writer, reader):
            process.kill()
            process.join(TIMEOUT)
    assert errors == [], f"{len(errors)} of {searches + answers + len(errors)} reads failed: {errors[:3]}"
    assert searches > 0 and answers > 0
    build(corpus, tmp_path / "clean", fast_models)
    assert_check_passes(index)
    assert_same_store(observe(index), observe(tmp_path / "clean"))  # chunk ids differ: other history
