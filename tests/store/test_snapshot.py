"""Readers see one committed generation while writers commit, and follow a rebuild (issue 23, items 3, 4)."""

from __future__ import annotations

import pytest
import torch

from ragcompress.store import Store, StoreCorruptError, StoreRebuiltError
from tests.store.helpers import QUERIES, add, build, make_doc, make_manifest


def remove_docs(path, doc_ids, compact=False):
    """Commit the removal of ``doc_ids`` from a second, writable handle (as another process would)."""
    with Store.open(path, readonly=False) as writer_store:
        with writer_store.begin_update() as writer:
            for doc_id in doc_ids:
                writer.remove_document(doc_id)
        if compact:
            writer_store.compact(min_dead_fraction=0.01)


def test_a_snapshot_reads_one_generation_while_a_writer_commits(tmp_path):
    path = tmp_path / "s"
    build(path, [make_doc(i) for i in range(8)]).close()
    reader = Store.open(path)
    with reader.snapshot() as generation:
        hits = reader.search_batch(QUERIES, 4)
        ids = sorted({h.chunk_id for row in hits for h in row})
        doc_ids = sorted({c.doc_id for c in Store.open(path).get_chunks(ids)})
        remove_docs(path, doc_ids)  # commits between the search and the reads below
        chunks = reader.get_chunks(ids)
        vectors = reader.get_vectors(ids)
        assert reader.stats().generation == generation
    assert [c.chunk_id for c in chunks] == ids and len(vectors) == len(ids)
    # Outside the snapshot the reader follows the commit.
    assert not {h.chunk_id for row in reader.search_batch(QUERIES, 4) for h in row} & set(ids)
    with pytest.raises(KeyError):
        reader.get_chunks(ids)


def test_a_compaction_under_a_read_starts_it_over_at_the_new_generation(tmp_path):
    path = tmp_path / "s"
    store = Store.create(path, make_manifest("int8"))
    for i in range(6):  # one shard per document, so the compaction deletes shard files
        with store.begin_update() as writer:
            add(writer, make_doc(i))
    store.close()
    reader = Store.open(path)
    attempts = []

    def read():
        attempts.append(reader.stats().generation)
        ids = [int(i) for i in reader.chunk_ids()]
        if len(attempts) == 1:
            remove_docs(path, ["doc000"], compact=True)  # deletes every shard the pinned state lists
        return ids, reader.get_vectors(ids)

    ids, vectors = reader.read_consistent(read)
    assert len(attempts) == 2 and attempts[1] > attempts[0]
    assert len(vectors) == len(ids) and "doc000" not in {c.doc_id for c in reader.get_chunks(ids)}


def test_real_damage_is_still_reported(tmp_path):
    path = tmp_path / "s"
    build(path, [make_doc(i) for i in range(3)]).close()
    for shard in (path / "vectors").iterdir():
        shard.write_bytes(shard.read_bytes()[:-1] + b"\x00")
    reader = Store.open(path)
    with pytest.raises(StoreCorruptError, match="corrupted"):
        reader.get_vectors([int(i) for i in reader.chunk_ids()])


def test_an_open_reader_follows_a_rebuild(tmp_path):
    path = tmp_path / "s"
    build(path, [make_doc(i) for i in range(3)]).close()
    reader = Store.open(path)
    old_ids = [int(i) for i in reader.chunk_ids()]
    assert reader.get_vectors(old_ids[:1])  # opens one shard of the old store
    with Store.create(path, make_manifest("fp16"), overwrite=True).begin_update() as writer:
        add(writer, make_doc(7))
    hits = reader.search_batch(QUERIES, 2)
    ids = sorted({h.chunk_id for row in hits for h in row})
    assert {c.doc_id for c in reader.get_chunks(ids)} == {"doc007"}
    assert [d.doc_id for d in reader.documents()] == ["doc007"]
    expected = make_doc(7).vectors
    got = reader.get_vectors(list(range(len(expected))))
    assert all(torch.equal(a, b) for a, b in zip(got, expected))  # fp16 now: exact
    assert reader.manifest.vector_dtype == "fp16" and reader.check() == []


def test_a_rebuild_with_other_models_is_one_clear_line(tmp_path):
    path = tmp_path / "s"
    build(path, [make_doc(0)]).close()
    reader = Store.open(path)
    other = make_manifest()
    other.compressor = type(other.compressor)("another-compressor", "ffff", 4, 32)
    with Store.create(path, other, overwrite=True).begin_update() as writer:
        add(writer, make_doc(1))
    with pytest.raises(StoreRebuiltError) as error:
        reader.search_batch(QUERIES, 2)
    assert "\n" not in str(error.value) and "open it again" in str(error.value)
