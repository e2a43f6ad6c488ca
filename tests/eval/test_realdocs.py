"""The committed real-document QA set (evalsets/realdocs): its questions checked against the pages the
build script extracts from the installed Debian documentation packages, and its refusal as training data."""

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from ragcompress.data.qa_dataset import read, write
from ragcompress.eval.heldout import HELDOUT_FIELD, HeldOutDataError
from ragcompress.training.qa_data import QAExamples
from ragcompress_tools.corpus import locate_input

REPO = Path(__file__).resolve().parents[2]
KINDS = {"name", "number", "term", "code"}


def _script():
    spec = importlib.util.spec_from_file_location("build_realdocs_qa", REPO / "scripts/build_realdocs_qa.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    for source, package in (("python-docs", "python3.11-doc"), ("linux-docs", "linux-doc-6.1")):
        if locate_input(source) is None:
            pytest.skip(f"Debian package {package} is not installed (apt-get install -y {package})")
    out = tmp_path_factory.mktemp("realdocs") / "set"
    assert _script().main(["--out", str(out)]) == 0
    return read(out)


def test_every_answer_is_written_verbatim_in_its_gold_page(built):
    texts = dict(built.documents)
    for q in built.questions:
        assert q["doc_ids"] and all(doc_id in texts for doc_id in q["doc_ids"]), q["id"]
        for answer in q["answers"]:
            assert answer.strip() == answer and answer in texts[q["doc_ids"][0]], (q["id"], answer)


def test_shape_of_the_committed_set(built):
    ids = [q["id"] for q in built.questions]
    assert len(ids) == len(set(ids)) >= 150
    assert {q["kind"] for q in built.questions} == KINDS
    assert {q[HELDOUT_FIELD] for q in built.questions} == {"realdocs"}
    # every listed page is asked about, at least three times, and nothing else is in the corpus
    per_page = Counter(q["doc_ids"][0] for q in built.questions)
    assert set(per_page) == {doc_id for doc_id, _ in built.documents}
    assert 30 <= len(per_page) <= 60 and min(per_page.values()) >= 3
    assert {doc_id.split("__")[0] for doc_id in per_page} == {"python-docs", "linux-docs"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_]+", text.lower())


def test_questions_paraphrase_rather_than_copy_their_page(built):
    # no question repeats a run of 7 words of its page: it is asked in other words than the answer's
    texts = dict(built.documents)
    for q in built.questions:
        page = " ".join(_words(texts[q["doc_ids"][0]]))
        words = _words(q["question"])
        runs = [" ".join(words[i : i + 7]) for i in range(len(words) - 6)]
        assert not [run for run in runs if f" {run} " in f" {page} "], q["id"]


def test_the_listed_pages_are_the_gold_pages():
    script = _script()
    questions = [json.loads(line) for line in script.QUESTIONS.read_text().splitlines() if line.strip()]
    listed = {script.doc_id_of(i) for i in script.listed_ids()}
    assert listed == {doc_id for q in questions for doc_id in q["doc_ids"]}


def test_stage_two_refuses_the_real_document_set(built, tmp_path):
    copy = write(built, tmp_path / "copy")
    with pytest.raises(HeldOutDataError, match="realdocs"):
        QAExamples([str(copy)], k=2, seed=0, variants=1)
