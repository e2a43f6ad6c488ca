"""Documents for training and perplexity: every source kind, and one clear error for bad input."""

import json

import pytest

from ragcompress.data.documents import DataError, read_documents


def _words(n, start=3):
    return " ".join(f"t{3 + (start + i) % 90}" for i in range(n))


def test_reads_text_markdown_jsonl_dirs_and_skips_hidden(tmp_path):
    (tmp_path / "a.txt").write_text(_words(5))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text(_words(4))
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"text": _words(3)}) + "\n" + json.dumps({"input_ids": [5, 6, 7]}) + "\n"
    )
    (tmp_path / ".hidden.txt").write_text(_words(9))
    docs = list(read_documents(tmp_path))
    assert len(docs) == 4
    assert [d.input_ids for d in docs if d.input_ids] == [[5, 6, 7]]
    assert not any("hidden" in d.key for d in docs)


def test_reads_hf_datasets_and_parquet(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": [_words(6), _words(7)], "id": ["x", "y"]})
    ds.save_to_disk(str(tmp_path / "saved"))
    ds.to_parquet(str(tmp_path / "data.parquet"))
    assert [d.text for d in read_documents(tmp_path / "saved")] == [_words(6), _words(7)]
    assert len(list(read_documents(tmp_path / "data.parquet"))) == 2
    tokenized = datasets.Dataset.from_dict({"input_ids": [[4, 5, 6], [7, 8]]})
    tokenized.save_to_disk(str(tmp_path / "tok"))
    assert [d.input_ids for d in read_documents(tmp_path / "tok")] == [[4, 5, 6], [7, 8]]


def test_bad_paths_and_lines_give_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        list(read_documents(tmp_path / "missing"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        list(read_documents(bad))
    (tmp_path / "x.bin").write_bytes(b"\x00\x01")
    with pytest.raises(DataError, match="unsupported file type"):
        list(read_documents(tmp_path / "x.bin"))
    field = tmp_path / "field.jsonl"
    field.write_text('{"body": "x"}\n')
    with pytest.raises(DataError, match="neither 'text' nor 'input_ids'"):
        list(read_documents(field))
