import numpy as np
import pytest
import torch

from ragcompress.store import (
    ChunkInput,
    EmbedderInfo,
    SearchHit,
    Store,
    StoreError,
    StoreMismatchError,
    read_manifest,
)
from ragcompress.store.quantize import bytes_per_vector
from tests.store.helpers import DIM, HIDDEN, add, build, make_doc, make_manifest, snapshot


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "int8", "fp8"])
def test_vectors_round_trip_through_the_store(tmp_path, dtype):
    docs = [make_doc(i) for i in range(4)]
    store = build(tmp_path / "s", docs, dtype=dtype)
    reopened = Store.open(tmp_path / "s")
    ids = [int(i) for i in reopened.chunk_ids()]
    expected = [v for d in docs for v in d.vectors]
    got = reopened.get_vectors(ids)
    assert [g.shape for g in got] == [e.shape for e in expected]  # κ and 2κ vectors per chunk
    for g, e in zip(got, expected):
        if dtype in ("fp16",):
            assert torch.equal(g, e)
        elif dtype == "bf16":
            assert torch.equal(g, e.to(torch.bfloat16).float())
        elif dtype == "int8":
            step = e.abs().amax(dim=1, keepdim=True) / 127
            assert ((g - e).abs() <= step / 2 + 1e-6).all()
        else:
            assert (
                (g - e).abs() <= e.abs() / 16 + e.abs().amax(dim=1, keepdim=True) / 448 * 2**-10 + 1e-6
            ).all()
    half = reopened.get_vectors(ids[:2][::-1], dtype=torch.float16)
    assert half[0].dtype == torch.float16 and half[0].shape == expected[1].shape
    store.close()


@pytest.mark.parametrize("metric", ["cosine", "ip"])
def test_flat_search_equals_brute_force(tmp_path, metric):
    docs = [make_doc(i) for i in range(30)]
    manifest = make_manifest("fp16", "flat", metric=metric)
    store = Store.create(tmp_path / "s", manifest)
    with store.begin_update() as writer:
        for doc in docs:
            doc.embeddings = doc.embeddings * 3.0  # not unit length: "cosine" must normalise
            add(writer, doc)
    embeddings = np.concatenate([d.embeddings for d in docs])
    if metric == "cosine":
        embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    query = np.random.default_rng(1).normal(size=DIM).astype(np.float32)
    q = query / np.linalg.norm(query) if metric == "cosine" else query
    scores = embeddings @ q
    order = np.argsort(-scores)[:7]
    hits = store.search(query, 7)
    assert [h.chunk_id for h in hits] == order.tolist()  # chunk ids are assigned in insertion order
    assert np.allclose([h.score for h in hits], scores[order], atol=1e-5)
    chunk_id, score = hits[0]  # hits unpack like (chunk_id, score)
    assert (chunk_id, score) == (hits[0].chunk_id, hits[0].score)
    assert store.search(torch.from_numpy(query), 7) == hits


def test_ivf_trains_when_large_enough_and_matches_brute_force(tmp_path):
    rng = np.random.default_rng(0)
    store = Store.create(tmp_path / "s", make_manifest("fp16", "ivf", nprobe=1000))
    small = rng.normal(size=(20, DIM)).astype(np.float32)
    with store.begin_update() as writer:
        writer.add_document(
            "small", "p", "h", [ChunkInput("t", 0, 1, 1)] * 20, small, [torch.zeros(1, HIDDEN)] * 20
        )
    assert store._state.index._ivf() is None  # too few vectors to train: flat fallback
    big = rng.normal(size=(400, DIM)).astype(np.float32)
    with store.begin_update() as writer:
        writer.add_document(
            "big", "p", "h", [ChunkInput("t", 0, 1, 1)] * 400, big, [torch.zeros(1, HIDDEN)] * 400
        )
    assert store._state.index._ivf() is not None
    all_embeddings = np.concatenate([small, big])
    all_embeddings /= np.linalg.norm(all_embeddings, axis=1, keepdims=True)
    queries = rng.normal(size=(5, DIM)).astype(np.float32)
    expected = np.argsort(
        -(all_embeddings @ (queries / np.linalg.norm(queries, axis=1, keepdims=True)).T), axis=0
    )
    for q, row in zip(queries, expected.T):
        assert [h.chunk_id for h in store.search(q, 5)] == row[:5].tolist()
    with store.begin_update() as writer:  # removal from a trained IVF
        writer.remove_document("small")
    ids = {h.chunk_id for q in queries for h in store.search(q, 50)}
    assert ids and not ids & set(range(20))
    reopened = Store.open(tmp_path / "s")
    assert not reopened.index_was_stale and reopened.check() == []


def test_hnsw_search_and_removal(tmp_path):
    docs = [make_doc(i) for i in range(40)]
    store = build(tmp_path / "s", docs, dtype="fp16", kind="hnsw")
    embeddings = np.concatenate([d.embeddings for d in docs])
    q = embeddings[7]
    assert store.search(q, 1)[0].chunk_id == 7
    with store.begin_update() as writer:
        writer.remove_document(docs[2].doc_id)  # HNSW cannot delete: the index is rebuilt
    removed = {c for c in range(len(embeddings))} - set(Store.open(tmp_path / "s").chunk_ids().tolist())
    found = {h.chunk_id for row in store.search_batch(embeddings, 10) for h in row}
    assert removed and not found & removed
    assert Store.open(tmp_path / "s").check() == []


def test_add_remove_readd_and_replace(tmp_path):
    store = build(tmp_path / "s", [make_doc(i) for i in range(5)])
    doc = make_doc(2)
    before = {h.chunk_id for h in store.search(doc.embeddings[0], 100)}
    with store.begin_update() as writer:
        assert writer.remove_document(doc.doc_id)
        assert not writer.remove_document("nope")
    hits = store.search(doc.embeddings[0], 100)
    assert len(hits) == len(before) - len(doc.chunks)
    assert all(store.get_chunks([h.chunk_id])[0].doc_id != doc.doc_id for h in hits)
    assert store.document(doc.doc_id) is None

    with store.begin_update() as writer:
        new_ids = add(writer, doc)
        with pytest.raises(StoreError, match="replace=True"):
            add(writer, doc)
    assert min(new_ids) > max(before)  # ids are never reused
    assert store.search(doc.embeddings[0], 1)[0].chunk_id == new_ids[0]

    changed = make_doc(2, version=1)
    with store.begin_update() as writer:
        add(writer, changed, replace=True)
    assert store.document(doc.doc_id).content_hash == changed.content_hash
    texts = [c.text for c in store.get_chunks([h.chunk_id for h in store.search(changed.embeddings[0], 100)])]
    assert changed.chunks[0].text in texts and doc.chunks[0].text not in texts
    assert store.stats().documents == 5 and store.check() == []


def test_remove_a_staged_document_before_commit(tmp_path):
    store = Store.create(tmp_path / "s", make_manifest())
    with store.begin_update() as writer:
        add(writer, make_doc(0))
        add(writer, make_doc(1))
        assert writer.remove_document(make_doc(0).doc_id)
    assert [d.doc_id for d in store.documents()] == [make_doc(1).doc_id]
    assert store.check() == []


def test_persistence_across_reopen(tmp_path):
    docs = [make_doc(i) for i in range(8)]
    store = build(tmp_path / "s", docs)
    expected = snapshot(store)
    store.close()
    again = Store.open(tmp_path / "s")
    got = snapshot(again)
    assert got["documents"] == expected["documents"] and got["search"] == expected["search"]
    assert got["documents"][0][5] == {"i": 0}  # metadata JSON survives
    with pytest.raises(StoreError, match="read-only"):
        again.begin_update()


def test_empty_store(tmp_path):
    store = Store.create(tmp_path / "s", make_manifest())
    q = np.ones(DIM, np.float32)
    assert store.search(q, 5) == []
    assert store.search_batch(np.ones((2, DIM)), 5) == [[], []]
    assert store.documents() == [] and store.get_vectors([]) == [] and store.get_chunks([]) == []
    stats = store.stats()
    assert (stats.documents, stats.chunks, stats.tokens, stats.bytes_per_token) == (0, 0, 0, 0.0)
    assert store.check() == []
    assert Store.open(tmp_path / "s").check() == []


def test_k_larger_than_store_and_bad_queries(tmp_path):
    store = build(tmp_path / "s", [make_doc(0), make_doc(1)])  # 1 + 2 chunks
    hits = store.search(np.ones(DIM), 50)
    assert len(hits) == 3 and all(isinstance(h, SearchHit) for h in hits)
    assert sorted(h.score for h in hits)[::-1] == [h.score for h in hits]
    with pytest.raises(ValueError, match="dimension"):
        store.search(np.ones(DIM + 1), 3)
    with pytest.raises(KeyError, match="not in the store"):
        store.get_vectors([12345])


def test_stats_numbers(tmp_path):
    docs = [make_doc(i) for i in range(6)]
    store = build(tmp_path / "s", docs, dtype="int8")
    stats = store.stats()
    tokens = sum(c.n_tokens for d in docs for c in d.chunks)
    vectors = sum(len(v) for d in docs for v in d.vectors)
    assert (stats.documents, stats.chunks, stats.tokens, stats.vectors) == (
        6,
        sum(len(d.chunks) for d in docs),
        tokens,
        vectors,
    )
    assert stats.vector_bytes == vectors * (HIDDEN + 4) == vectors * bytes_per_vector(HIDDEN, "int8")
    assert stats.bytes_per_token == pytest.approx(stats.vector_bytes / tokens)
    assert stats.disk_bytes > stats.vector_bytes
    assert stats.to_dict()["vector_dtype"] == "int8" and stats.compressor == "tiny-compressor"
    counts = read_manifest(tmp_path / "s").counts
    assert (counts.documents, counts.chunks, counts.tokens, counts.vectors) == (
        6,
        stats.chunks,
        tokens,
        vectors,
    )


def test_refuses_other_models_or_dtype(tmp_path):
    build(tmp_path / "s", [make_doc(0)], dtype="int8")
    same = make_manifest("int8")
    Store.open_or_create(tmp_path / "s", same).close()
    for other in (make_manifest("fp16"), make_manifest("int8", "hnsw")):
        with pytest.raises(StoreMismatchError, match="--rebuild"):
            Store.open_or_create(tmp_path / "s", other)
    other = make_manifest("int8")
    other.embedder = EmbedderInfo("another-embedder", DIM)
    with pytest.raises(StoreMismatchError, match="embedder") as error:
        Store.open(tmp_path / "s", readonly=False).begin_update(expect=other)
    assert "\n" not in str(error.value)
    with pytest.raises(StoreError, match="overwrite=True"):
        Store.create(tmp_path / "s", same)


def test_rebuild_keeps_the_old_store_until_the_new_one_commits(tmp_path):
    path = tmp_path / "s"
    build(path, [make_doc(i) for i in range(3)], dtype="int8").close()
    rebuild = Store.open_or_create(path, make_manifest("fp16"), rebuild=True)
    with rebuild.begin_update() as writer:
        add(writer, make_doc(10))
        # not committed yet: the old store is still the one at `path`
        assert len(Store.open(path).documents()) == 3
    assert rebuild.directory == path
    fresh = Store.open(path)
    assert fresh.manifest.vector_dtype == "fp16" and [d.doc_id for d in fresh.documents()] == ["doc010"]
    assert fresh.check() == [] and not any(p.name.startswith(".s.") for p in tmp_path.iterdir())

    abandoned = Store.create(path, make_manifest("int8"), overwrite=True)
    abandoned.close()  # never committed: the fp16 store stays
    assert Store.open(path).manifest.vector_dtype == "fp16"


def test_a_rebuild_stopped_part_way_keeps_the_old_store_and_goes_on_next_time(tmp_path):
    path = tmp_path / "s"
    build(path, [make_doc(i) for i in range(3)], dtype="int8").close()
    rebuild = Store.create(path, make_manifest("fp16"), overwrite=True)
    with pytest.raises(KeyboardInterrupt):
        with rebuild.begin_update() as writer:
            add(writer, make_doc(10))
            writer.commit()  # committed in the staging folder only
            assert len(Store.open(path).documents()) == 3
            add(writer, make_doc(11))
            raise KeyboardInterrupt
    rebuild.close()
    old = Store.open(path)
    assert old.manifest.vector_dtype == "int8" and len(old.documents()) == 3 and old.check() == []

    again = Store.create(path, make_manifest("fp16"), overwrite=True)  # the same settings: goes on
    assert [d.doc_id for d in again.documents()] == ["doc010"]
    with again.begin_update() as writer:
        add(writer, make_doc(11))
    again.close()
    fresh = Store.open(path)
    assert fresh.manifest.vector_dtype == "fp16" and fresh.check() == []
    assert [d.doc_id for d in fresh.documents()] == ["doc010", "doc011"]
    assert not any(p.name.startswith(".s.") for p in tmp_path.iterdir())

    stopped = Store.create(path, make_manifest("int8"), overwrite=True)
    with stopped.begin_update() as writer:
        add(writer, make_doc(20))
        writer.commit()
        writer.close()  # closed, not finished: the fp16 store stays
    stopped.close()
    assert Store.open(path).manifest.vector_dtype == "fp16"
    other = Store.create(path, make_manifest("fp16"), overwrite=True)  # other settings: starts over
    assert other.documents() == []
    other.close()
    assert Store.open(path).manifest.vector_dtype == "fp16" and len(Store.open(path).documents()) == 2


def test_compact_reclaims_removed_rows(tmp_path):
    store = Store.create(tmp_path / "s", make_manifest("int8"))
    for i in range(6):  # one commit (one small shard) per document
        with store.begin_update() as writer:
            add(writer, make_doc(i))
    with store.begin_update() as writer:
        writer.remove_document(make_doc(1).doc_id)
    expected = snapshot(store)
    result = store.compact()
    assert result.shards_before == 6 and result.shards_after == 1 and result.bytes_reclaimed > 0
    assert len(list((tmp_path / "s" / "vectors").iterdir())) == 1
    got = snapshot(Store.open(tmp_path / "s"))
    assert got["chunks"] == expected["chunks"] and got["search"] == expected["search"]
    assert all(torch.equal(got["vectors"][k], expected["vectors"][k]) for k in expected["vectors"])
    assert store.check() == []


def test_bad_document_inputs(tmp_path):
    store = Store.create(tmp_path / "s", make_manifest())
    doc = make_doc(1)
    with store.begin_update() as writer:
        with pytest.raises(ValueError, match="2 chunks, 2 embeddings, 1 vectors"):
            writer.add_document("x", "p", "h", doc.chunks, doc.embeddings, doc.vectors[:1])
        with pytest.raises(ValueError, match="hidden|expected"):
            writer.add_document(
                "x", "p", "h", doc.chunks[:1], doc.embeddings[:1], [torch.zeros(4, HIDDEN + 1)]
            )
        with pytest.raises(ValueError, match="dimension"):
            writer.add_document("x", "p", "h", doc.chunks[:1], np.zeros((1, DIM + 2)), doc.vectors[:1])
        # a document with no chunks (an empty file) is recorded, with nothing to search
        writer.add_document("empty", "empty.txt", "h0", [], np.zeros((0, DIM)), [], status="empty")
    assert store.document("empty").n_chunks == 0 and store.document("empty").status == "empty"
    assert store.check() == []


def test_rebuild_interrupted_between_its_renames(tmp_path, monkeypatch):
    from ragcompress.store import layout

    path = tmp_path / "s"
    build(path, [make_doc(i) for i in range(3)], dtype="int8").close()
    rebuild = Store.create(path, make_manifest("fp16"), overwrite=True)
    real_rename = layout.os.rename

    def rename_then_fail(source, target):
        if str(source).endswith(".rebuild"):
            raise OSError("simulated crash between the two renames")
        real_rename(source, target)

    monkeypatch.setattr(layout.os, "rename", rename_then_fail)
    with pytest.raises(OSError, match="simulated"):
        with rebuild.begin_update() as writer:
            add(writer, make_doc(10))
    monkeypatch.undo()
    assert not path.exists()
    # Readers find the last committed store where the interrupted swap left it ...
    assert len(Store.open(path).documents()) == 3
    rebuild.close()
    # ... and the next writer puts it back.
    store = Store.open(path, readonly=False)
    assert path.is_dir() and len(store.documents()) == 3 and store.check() == []


def test_rebuild_of_an_empty_corpus_empties_the_store(tmp_path):
    path = tmp_path / "s"
    build(path, [make_doc(0)]).close()
    with Store.create(path, make_manifest("int8"), overwrite=True).begin_update():
        pass  # nothing added: the rebuild still replaces the old store
    assert Store.open(path).documents() == []


def test_faiss_is_imported_only_when_an_index_is_used():
    """Training and evaluation (e.g. on a GPU machine without a faiss wheel) import the store package."""
    import subprocess
    import sys

    code = (
        "import sys; import ragcompress.eval.qa, ragcompress.retrieval, ragcompress.store; "
        "assert 'faiss' not in sys.modules, 'faiss imported early'; "
        "from ragcompress.store.faiss_index import faiss; faiss.IndexFlatIP; "
        "assert 'faiss' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
