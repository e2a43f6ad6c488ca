"""Searches on the caller's device: flat ones through faiss_index.DeviceFlat (with or without GPU FAISS),
trained IVF ones through GPU FAISS where it is installed; the same hits as FAISS on the CPU.

The device paths are taken for CUDA callers only; these tests add "cpu" to DEVICE_SEARCH_TYPES so
DeviceFlat's code runs here, and the last tests repeat the comparisons on a GPU where there is one (GPU
FAISS's where a GPU build of faiss is installed).
"""

import logging

import numpy as np
import pytest
import torch

from ragcompress.store import ChunkInput, Store, faiss_index
from ragcompress.store.faiss_index import DeviceFlat
from tests.store.helpers import DIM, HIDDEN, add, build, make_doc, make_manifest


@pytest.fixture
def cpu_is_a_search_device(monkeypatch):
    monkeypatch.setattr(faiss_index, "DEVICE_SEARCH_TYPES", ("cuda", "cpu"))


def hits(store, queries, k, device=None):
    """The chunk ids found, per query (the scores are compared with a tolerance where they matter)."""
    return [[h.chunk_id for h in row] for row in store.search_batch(queries, k, device)]


def build_with(path, docs, **faiss_options):
    store = Store.create(path, make_manifest("int8", **faiss_options))
    with store.begin_update() as writer:
        for doc in docs:
            doc.embeddings = doc.embeddings * 2.5  # not unit length: "cosine" must normalise
            add(writer, doc)
    return store


def queries(n, seed=1):
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "ip"])
def test_device_search_returns_the_cpu_search_hits(tmp_path, cpu_is_a_search_device, metric):
    store = build_with(tmp_path / "s", [make_doc(i) for i in range(40)], metric=metric)
    total = len(store.chunk_ids())
    for n, k in [(1, 1), (1, 10), (5, 7), (17, total), (3, total + 5)]:
        q = queries(n, seed=n + k)
        on_cpu = store.search_batch(q, k)
        on_device = store.search_batch(q, k, "cpu")
        assert [[h.chunk_id for h in row] for row in on_device] == [
            [h.chunk_id for h in row] for row in on_cpu
        ]
        np.testing.assert_allclose(
            [[h.score for h in row] for row in on_device],
            [[h.score for h in row] for row in on_cpu],
            atol=1e-5,
        )
        assert all(len(row) == min(k, total) for row in on_device)
    assert isinstance(store._state.index._on_device, DeviceFlat)
    assert store._state.index.search_route("cpu") == "torch"
    assert store._state.index.search_route(None) == "faiss-cpu"
    assert store.last_search_route == "torch"  # the device search above ran last
    store.search_batch(queries(1), 3)
    assert store.last_search_route == "faiss-cpu"


def test_the_device_copy_follows_additions_and_removals(tmp_path, cpu_is_a_search_device):
    docs = [make_doc(i) for i in range(12)]
    store = build(tmp_path / "s", docs)
    q = np.concatenate([d.embeddings for d in docs])
    before = hits(store, q, 5, "cpu")
    assert before == hits(store, q, 5)
    with store.begin_update() as writer:
        writer.remove_document(docs[3].doc_id)
        writer.add_document(
            "new", "p", "h", [ChunkInput("t", 0, 1, 1)], queries(1, seed=9), [torch.zeros(1, HIDDEN)]
        )
    after = hits(store, q, 5, "cpu")
    assert after == hits(store, q, 5) and after != before
    assert not {c for row in after for c in row} - set(
        store.chunk_ids().tolist()
    )  # nothing removed comes back


def test_a_second_reader_sees_another_writers_commit_on_the_device(tmp_path, cpu_is_a_search_device):
    docs = [make_doc(i) for i in range(8)]
    build(tmp_path / "s", docs).close()
    reader = Store.open(tmp_path / "s")
    q = queries(4)
    first = hits(reader, q, 3, "cpu")
    writer_store = Store.open(tmp_path / "s", readonly=False)
    extra = make_doc(50)
    extra.embeddings = q[:1] / np.linalg.norm(q[:1])  # the best hit of query 0 from now on
    with writer_store.begin_update() as writer:
        (new,) = writer.add_document(
            extra.doc_id,
            extra.path,
            extra.content_hash,
            extra.chunks[:1],
            extra.embeddings,
            extra.vectors[:1],
        )
    second = reader.search_batch(q, 3, "cpu")
    assert [[h.chunk_id for h in row] for row in second] == hits(reader, q, 3) != first
    assert (second[0][0].chunk_id, second[0][0].score) == (new, pytest.approx(1.0, abs=1e-5))  # cosine


def approximate_store(path, kind):
    """An IVF or HNSW index of 400 chunks: enough for IVF to be trained."""
    store = Store.create(path, make_manifest("fp16", kind))
    embeddings = np.random.default_rng(0).normal(size=(400, DIM)).astype(np.float32)
    with store.begin_update() as writer:
        writer.add_document(
            "d", "p", "h", [ChunkInput("t", 0, 1, 1)] * 400, embeddings, [torch.zeros(1, HIDDEN)] * 400
        )
    return store


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_stay_on_faiss(tmp_path, cpu_is_a_search_device, kind):
    store = approximate_store(tmp_path / "s", kind)
    assert kind != "ivf" or store._state.index._ivf() is not None
    q = queries(3)
    assert hits(store, q, 5, "cpu") == hits(store, q, 5)
    assert store._state.index._on_device is None
    assert store._state.index.search_route("cpu") == "faiss-cpu"


def test_an_ivf_index_still_flat_is_searched_on_the_device(tmp_path, cpu_is_a_search_device):
    store = build(tmp_path / "s", [make_doc(i) for i in range(6)], kind="ivf")
    assert store._state.index._ivf() is None  # too few vectors to train: a flat index
    q = queries(2)
    assert hits(store, q, 4, "cpu") == hits(store, q, 4)
    assert store._state.index._on_device is not None


def test_other_devices_and_no_device_use_faiss(tmp_path):
    store = build(tmp_path / "s", [make_doc(i) for i in range(6)])
    q = queries(2)
    assert hits(store, q, 4, "cpu") == hits(store, q, 4) == hits(store, q, 4, torch.device("meta"))
    assert store._state.index._on_device is None  # "cpu" is not a search device outside these tests
    assert store._state.index.search_route("cpu") == store._state.index.search_route(None) == "faiss-cpu"


def test_too_little_device_memory_keeps_faiss_and_says_so_once(
    tmp_path, cpu_is_a_search_device, monkeypatch, caplog
):
    store = build(tmp_path / "s", [make_doc(i) for i in range(6)])
    monkeypatch.setattr(faiss_index, "free_bytes", lambda device: 1024)
    monkeypatch.setattr(faiss_index, "_SAID", set())
    q = queries(2)
    with caplog.at_level(logging.WARNING, logger=faiss_index.__name__):
        assert hits(store, q, 4, "cpu") == hits(store, q, 4, "cpu") == hits(store, q, 4)
    assert store._state.index._on_device is False  # refused until the index changes: not asked again
    said = [r.getMessage() for r in caplog.records if r.name == faiss_index.__name__]
    assert (
        len(said) == 1 and "searching on the CPU" in said[0] and "exceed 25% of cpu's 0 MiB free" in said[0]
    )
    monkeypatch.setattr(faiss_index, "free_bytes", lambda device: 1 << 40)
    with store.begin_update() as writer:  # a changed index asks again
        add(writer, make_doc(7))
    assert hits(store, q, 4, "cpu") == hits(store, q, 4)
    assert isinstance(store._state.index._on_device, DeviceFlat)


def test_a_failed_copy_keeps_faiss(tmp_path, cpu_is_a_search_device, monkeypatch, caplog):
    store = build(tmp_path / "s", [make_doc(i) for i in range(6)])

    def out_of_memory(*args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 MiB")

    monkeypatch.setattr(faiss_index, "DeviceFlat", out_of_memory)
    monkeypatch.setattr(faiss_index, "_SAID", set())
    q = queries(2)
    with caplog.at_level(logging.WARNING, logger=faiss_index.__name__):
        assert hits(store, q, 4, "cpu") == hits(store, q, 4)
    assert "could not move to cpu: CUDA out of memory" in caplog.text


def test_large_query_batches_are_scored_in_blocks(monkeypatch):
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(50, DIM)).astype(np.float32)
    ids = np.arange(1000, 1050, dtype=np.int64)
    flat = DeviceFlat(ids, vectors, "cpu")
    q = queries(9)
    whole = flat.search(q, 6)
    monkeypatch.setattr(faiss_index, "SCORE_BLOCK_BYTES", 2 * 4 * 50)  # two queries per block
    blocks = flat.search(q, 6)
    np.testing.assert_array_equal(blocks[1], whole[1])
    np.testing.assert_allclose(blocks[0], whole[0], rtol=1e-6)  # another matmul shape may round apart
    expected = np.argsort(-(q @ vectors.T), axis=1)[:, :6] + 1000
    np.testing.assert_array_equal(whole[1], expected)
    assert whole[0].dtype == np.float32 and whole[1].dtype == np.int64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_flat_searches_run_there_with_the_cpu_hits(tmp_path):
    """The torch path, also where GPU FAISS is installed (faster than its flat index from 10^5 chunks)."""
    store = build(tmp_path / "s", [make_doc(i) for i in range(40)])
    q = queries(16)
    assert hits(store, q, 10, "cuda") == hits(store, q, 10)
    index = store._state.index
    assert index.search_route("cuda") == "torch" and index._gpu_index is None
    assert index._on_device.vectors.device.type == "cuda"


GPU_FAISS = pytest.mark.skipif(
    not torch.cuda.is_available() or not faiss_index.gpu_faiss_installed(),
    reason="needs a GPU build of faiss (faiss-gpu) and a CUDA GPU",
)


@GPU_FAISS
def test_with_gpu_faiss_ivf_searches_run_there_with_the_cpu_hits(tmp_path):
    store = approximate_store(tmp_path / "s", "ivf")
    index = store._state.index
    assert index._ivf() is not None  # a trained IVF index, probed as on the CPU
    q = queries(16)
    on_cpu, on_gpu = store.search_batch(q, 10), store.search_batch(q, 10, "cuda")
    assert index.search_route("cuda") == "faiss-gpu" and index._on_device is None
    same = [[h.chunk_id for h in a] == [h.chunk_id for h in b] for a, b in zip(on_cpu, on_gpu, strict=True)]
    assert sum(same) >= 15  # float sums in another order: one near-tie may swap
    np.testing.assert_allclose(
        [[h.score for h in row] for row in on_gpu], [[h.score for h in row] for row in on_cpu], atol=1e-4
    )


@GPU_FAISS
def test_ivf_searches_past_gpu_faiss_k_stay_on_the_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(faiss_index, "GPU_FAISS_MAX_K", 5)
    store = approximate_store(tmp_path / "s", "ivf")
    q = queries(4)
    assert hits(store, q, 10, "cuda") == hits(store, q, 10)
    assert store._state.index.search_route("cuda", 10) == "faiss-cpu"
    assert store._state.index.search_route("cuda", 5) == "faiss-gpu"
