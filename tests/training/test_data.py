"""Training data: the deterministic split, packing, cached tokens (reading sources: tests/data/test_documents.py)."""

import json

import numpy as np
from tiny import tiny_tokenizer

from ragcompress.data.documents import read_documents
from ragcompress.training.data import batch_indices, build_sequences, in_validation, pack


def _words(n, start=3):
    return " ".join(f"t{3 + (start + i) % 90}" for i in range(n))


def test_split_is_deterministic_and_roughly_the_asked_fraction():
    keys = [f"doc-{i}" for i in range(5000)]
    first = [in_validation(k, 0.1) for k in keys]
    assert first == [in_validation(k, 0.1) for k in keys]
    assert 0.08 < np.mean(first) < 0.12


def test_split_keys_do_not_depend_on_where_the_corpus_lives(tmp_path):
    rows = [{"id": f"doc-{i}", "text": _words(5, i)} for i in range(50)]
    for place in ("a", "b/deeper"):
        (tmp_path / place / "corpus" / "notes").mkdir(parents=True)
        (tmp_path / place / "corpus" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (tmp_path / place / "corpus" / "notes" / "x.txt").write_text(_words(7))
    # the same rows in another order, in a third place: ids, not lines, identify them
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[::-1]))
    keys = {
        place: sorted(d.key for d in read_documents(tmp_path / place / "corpus"))
        for place in ("a", "b/deeper")
    }
    assert keys["a"] == keys["b/deeper"] and "notes/x.txt" in keys["a"] and "rows.jsonl#doc-7" in keys["a"]
    given_as_file = sorted(d.key for d in read_documents(tmp_path / "c" / "rows.jsonl"))
    assert given_as_file == [k for k in keys["a"] if k.startswith("rows.jsonl#")]
    # rows without an id are keyed by their line
    (tmp_path / "noid.jsonl").write_text('{"text": "t3 t4"}\n\n{"text": "t5"}\n')
    assert [d.key for d in read_documents(tmp_path / "noid.jsonl")] == ["noid.jsonl:1", "noid.jsonl:3"]


def test_pack_concatenates_and_drops_the_remainder():
    packed = pack([[1, 2, 3], [4, 5], [6, 7, 8, 9]], 4)
    assert packed.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert pack([[1, 2, 3], [4, 5, 6]], 2, limit=2).tolist() == [[1, 2], [3, 4]]


def test_build_sequences_splits_by_document_and_caches(tmp_path):
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": _words(30, i)}) + "\n" for i in range(200)))
    tok = tiny_tokenizer()
    train, valid = build_sequences([str(data)], [], tok, 16, tmp_path / "cache", valid_fraction=0.2)
    assert train.shape[1] == valid.shape[1] == 16 and len(train) > 3 * len(valid) > 0
    again_train, _ = build_sequences([str(data)], [], tok, 16, tmp_path / "cache", valid_fraction=0.2)
    assert np.array_equal(np.asarray(train), np.asarray(again_train))
    assert (tmp_path / "cache" / "sequences.json").is_file()
    # every document ends with EOS in the stream
    assert (np.asarray(train) == tok.eos_token_id).sum() > 0


def test_batch_indices_are_disjoint_across_ranks_and_cover_an_epoch():
    n, batch, world = 24, 3, 2
    seen = []
    for step in range(4):
        for rank in range(world):
            seen += batch_indices(step, 0, 1, batch, world, rank, n, seed=5).tolist()
    assert sorted(seen) == list(range(n))  # one epoch = 4 steps × 2 ranks × 3 rows
    assert batch_indices(1, 0, 1, 3, 2, 1, n, 5).tolist() == batch_indices(1, 0, 1, 3, 2, 1, n, 5).tolist()
