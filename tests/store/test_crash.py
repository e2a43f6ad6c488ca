"""Kill-safety and corruption detection."""

import random
import signal
import time

import pytest
import torch

from ragcompress.store import Store, StoreCorruptError, StoreFormatError, check_store
from ragcompress.store.fsutil import is_temp_name
from tests.store import writer_child
from tests.store.helpers import assert_same, build, make_doc, snapshot

PHASES = writer_child.PHASES
RANDOM_KILLS = 5


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The store a run that was never interrupted builds."""
    path = tmp_path_factory.mktemp("clean") / "store"
    writer_child.write_documents(str(path))
    return snapshot(Store.open(path))


def _run_child(context, target, *args):
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, child), daemon=True)
    process.start()
    child.close()
    return process, parent


def _drain(conn) -> list:
    messages = []
    try:
        while conn.poll():
            messages.append(conn.recv())
    except EOFError:
        pass
    return messages


def _assert_recovers(path, clean, expect_stale_index=None):
    # 1. The last committed state is readable, healthy and self-consistent without any writer.
    reader = Store.open(path)
    assert reader.check() == []
    if expect_stale_index is not None:
        assert reader.index_was_stale == expect_stale_index
    committed = snapshot(reader)
    done = {doc[0] for doc in committed["documents"]}
    assert done == {make_doc(i).doc_id for i in range(len(done))}  # whole documents, in order
    assert committed["chunks"] == {k: v for k, v in clean["chunks"].items() if k[0] in done}
    for key, tensor in committed["vectors"].items():
        assert torch.equal(tensor, clean["vectors"][key])
    n_chunks = len(committed["chunks"])
    assert all(len(row) == min(5, n_chunks) and {k[0] for k, _ in row} <= done for row in committed["search"])
    reader.close()
    # 2. A re-run finishes the job: same documents, chunks, vectors and search results as a clean build.
    writer_child.write_documents(str(path))
    final = Store.open(path)
    assert final.check() == [] and not final.index_was_stale
    assert_same(snapshot(final), clean)
    # 3. Nothing the crash left behind survives the next writer.
    shards = {row["name"] for row in final._state.meta.shard_rows()}
    assert {p.name for p in (path / "vectors").iterdir()} == shards
    assert not [p for p in path.iterdir() if is_temp_name(p.name)]


@pytest.mark.parametrize("phase", PHASES)
def test_kill_at_each_commit_phase(tmp_path, fork_context, clean, phase):
    path = tmp_path / "store"
    process, conn = _run_child(fork_context, writer_child.crash_during, str(path), phase, 3)
    process.join(120)
    messages = _drain(conn)
    assert process.exitcode == -signal.SIGKILL, messages
    assert "done" not in messages
    _assert_recovers(path, clean, expect_stale_index=phase == "before-index")


@pytest.mark.parametrize("seed", range(RANDOM_KILLS))
def test_kill_at_random_moments(tmp_path, fork_context, clean, seed):
    path = tmp_path / "store"
    rng = random.Random(seed)
    after_document, fraction = rng.randrange(1, writer_child.N_DOCS - 3), rng.random()
    process, conn = _run_child(fork_context, writer_child.run_until_killed, str(path))
    assert conn.poll(120) and conn.recv() == "ready"
    # Follow the child's progress and kill it at a random point of its next commit: commits take a
    # few milliseconds, so the delay is a random fraction of the last commit's duration.
    last = time.monotonic()
    while (message := conn.recv()) != after_document:
        assert message != "done"
        last = time.monotonic()
    time.sleep(fraction * (time.monotonic() - last))
    process.kill()
    process.join(30)
    assert process.exitcode == -signal.SIGKILL
    _drain(conn)
    _assert_recovers(path, clean)


def _first_shard(path):
    return sorted((path / "vectors").iterdir())[0]


def test_flipped_byte_in_a_shard_is_detected(tmp_path):
    path = tmp_path / "s"
    store = build(path, [make_doc(i) for i in range(4)])
    ids = [int(i) for i in store.chunk_ids()]
    store.close()
    shard = _first_shard(path)
    data = bytearray(shard.read_bytes())
    data[len(data) - 100] ^= 0x01  # inside the tensor data, so safetensors alone would not notice
    shard.write_bytes(bytes(data))
    problems = Store.open(path).check()
    assert len(problems) == 1 and shard.name in problems[0] and "corrupted" in problems[0]
    with pytest.raises(StoreCorruptError, match=shard.name):
        Store.open(path).get_vectors(ids)


def test_missing_shard_and_broken_files_are_reported(tmp_path):
    path = tmp_path / "s"
    build(path, [make_doc(i) for i in range(3)]).close()
    _first_shard(path).unlink()
    assert any("missing" in p for p in Store.open(path).check())
    (path / "faiss.index").write_bytes(b"garbage")
    # Store.open would try to rebuild the index from the shards and fail on the missing one;
    # check_store works on the files alone, so `info --check` can report a store that won't open.
    assert any("faiss.index is unreadable" in p for p in check_store(path))
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreFormatError, match="manifest.json"):
        Store.open(path)
