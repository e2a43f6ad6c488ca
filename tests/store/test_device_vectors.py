"""Summary vectors held on the reader's device (store/device_vectors.py): the host reads' values, bounded
memory, and no shard kept past the commit that removed it.

The store holds vectors for any device it is told to; these tests use the CPU, and one repeats the
comparison on a GPU where there is one.
"""

import logging

import pytest
import torch

from ragcompress.store import Store, faiss_index
from tests.store.helpers import add, make_doc, make_manifest

SHARD_DOCS = 3  # documents per commit: each commit writes one shard


def build_sharded(path, docs, dtype="int8"):
    """A store of several shards: one commit (one shard) per ``SHARD_DOCS`` documents."""
    store = Store.create(path, make_manifest(dtype))
    for start in range(0, len(docs), SHARD_DOCS):
        with store.begin_update() as writer:
            for doc in docs[start : start + SHARD_DOCS]:
                add(writer, doc)
    return store


def host_reads(path, ids, dtype, device="cpu"):
    with Store.open(path) as plain:
        return plain.get_vectors(ids, dtype=dtype, device=device)


@pytest.mark.parametrize("storage", ["fp16", "int8", "fp8"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_held_vectors_are_the_host_reads(tmp_path, storage, dtype):
    store = build_sharded(tmp_path / "s", [make_doc(i) for i in range(10)], storage)
    ids = [int(i) for i in store.chunk_ids()][::-1]  # across shards, out of storage order
    expected = host_reads(tmp_path / "s", ids, dtype)
    store.hold_vectors("cpu", dtype)
    for _ in range(2):  # loading the shards, then reading what is held
        got = store.get_vectors(ids, dtype=dtype, device="cpu")
        assert len(got) == len(expected)
        assert all(g.dtype == dtype and torch.equal(g, e) for g, e in zip(got, expected))
    held = store._state.device_vectors
    assert len(held.shards) == 4 and not held.declined
    got[0].add_(1.0)  # a caller's in-place change stays in its copy
    assert torch.equal(store.get_vectors(ids[:1], dtype=dtype, device="cpu")[0], expected[0])


def test_reads_in_another_dtype_or_device_come_from_the_host(tmp_path):
    store = build_sharded(tmp_path / "s", [make_doc(i) for i in range(6)])
    ids = [int(i) for i in store.chunk_ids()]
    store.hold_vectors("cpu", torch.bfloat16)
    got = store.get_vectors(ids, dtype=torch.float32, device="cpu")
    assert all(torch.equal(g, e) for g, e in zip(got, host_reads(tmp_path / "s", ids, torch.float32)))
    store.get_vectors(ids, dtype=torch.bfloat16, device=None)  # no device named: the host's tensors
    assert not store._state.device_vectors.shards


def test_shards_beyond_the_budget_are_read_from_the_host(tmp_path, caplog):
    store = build_sharded(tmp_path / "s", [make_doc(i) for i in range(12)])
    ids = [int(i) for i in store.chunk_ids()]
    expected = host_reads(tmp_path / "s", ids, torch.float32)
    first_shard = store._state.reader(sorted(store._state.shard_sha)[0])
    n_vectors, hidden, _ = first_shard.vectors_info()
    budget = n_vectors * hidden * 4 + 1  # one shard's vectors in float32: no two shards fit
    store.hold_vectors("cpu", torch.float32, max_bytes=budget)
    faiss_index._SAID.clear()
    with caplog.at_level(logging.WARNING):
        got = store.get_vectors(ids, dtype=torch.float32, device="cpu")
        store.get_vectors(ids, dtype=torch.float32, device="cpu")
    assert all(torch.equal(g, e) for g, e in zip(got, expected))
    held = store._state.device_vectors
    assert len(held.shards) == 1 and len(held.declined) == 3 and held.nbytes < budget
    said = [r.getMessage() for r in caplog.records if "stay on the host" in r.getMessage()]
    assert len(said) == 1 and f"{budget / 2**20:.1f} MiB" in said[0]


def test_the_default_budget_is_a_quarter_of_the_free_device_memory(tmp_path, monkeypatch):
    store = build_sharded(tmp_path / "s", [make_doc(i) for i in range(6)])
    monkeypatch.setattr(faiss_index, "free_bytes", lambda device: 4 << 20)
    store.hold_vectors("cpu", torch.float32)
    assert store.preload_vectors() > 0
    assert store._state.device_vectors.max_bytes == 1 << 20


def test_preload_holds_every_shard_and_commits_drop_the_shards_they_remove(tmp_path):
    docs = [make_doc(i) for i in range(9)]
    store = build_sharded(tmp_path / "s", docs)
    store.hold_vectors("cpu", torch.float32)
    loaded = store.preload_vectors()
    held = store._state.device_vectors
    assert len(held.shards) == 3 and loaded == held.nbytes > 0
    with Store.open(tmp_path / "s", readonly=False) as writer_store:  # another handle writes
        with writer_store.begin_update() as writer:
            writer.remove_document(docs[0].doc_id)
            add(writer, make_doc(0, version=1), replace=False)
        writer_store.compact(min_dead_fraction=0.0)
    ids = [int(i) for i in store.chunk_ids()]  # follows the commits
    got = store.get_vectors(ids, dtype=torch.float32, device="cpu")
    assert all(torch.equal(g, e) for g, e in zip(got, host_reads(tmp_path / "s", ids, torch.float32)))
    committed = set(store._state.shard_sha.items())
    assert set(held.shards) <= committed and len(held.shards) == len(committed)
    store.release_vectors()  # held no more: reads come from the host again
    assert store._state.device_vectors is None and store.preload_vectors() == 0
    assert all(torch.equal(g, e) for g, e in zip(store.get_vectors(ids, device="cpu"), got))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_held_vectors_are_the_host_reads(tmp_path):
    store = build_sharded(tmp_path / "s", [make_doc(i) for i in range(10)], "fp16")
    ids = [int(i) for i in store.chunk_ids()]
    expected = host_reads(tmp_path / "s", ids, torch.bfloat16, "cuda")
    store.hold_vectors("cuda", torch.bfloat16)
    got = store.get_vectors(ids, dtype=torch.bfloat16, device="cuda:0")  # "cuda" and "cuda:0" are one
    assert all(g.is_cuda and torch.equal(g, e) for g, e in zip(got, expected))
    assert len(store._state.device_vectors.shards) == 4
