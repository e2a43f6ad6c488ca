"""The synthetic QA set: determinism, split disjointness, answers in gold documents, template variety,
the on-disk format and its errors, training examples."""

import filecmp
import json
import os
import re
import runpy
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ragcompress.data.qa_dataset import DatasetFormatError, SynthQA, read, write
from ragcompress.eval.qa_metrics import normalize_answer
from ragcompress.training.qa_examples import training_examples
from ragcompress_tools.synthqa import generate
from ragcompress_tools.synthqa.kinds import KINDS
from ragcompress_tools.synthqa.names import split_of

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def test_set() -> SynthQA:
    return generate("test", 300, seed=0)


def _invented_words(dataset: SynthQA) -> set[str]:
    """The generated words: each entity's unique word, plus people's given names."""
    keys = {meta["key"] for meta in dataset.entities.values()}
    given = {meta["name"].split()[0] for meta in dataset.entities.values() if meta["kind"] == "person"}
    return keys | given


def test_same_seed_same_bytes(tmp_path):
    write(generate("test", 80, seed=7), tmp_path / "a")
    write(generate("test", 80, seed=7), tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 80 + 2  # corpus, questions.jsonl, entities.jsonl
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", files, shallow=False)
    assert (mismatch, errors) == ([], [])
    assert generate("test", 80, seed=8).documents != generate("test", 80, seed=7).documents


def test_script_writes_the_same_bytes_as_the_api(tmp_path, capsys):
    script = REPO / "scripts/make_synthqa.py"
    # A fresh process with another hash seed: output must not depend on set order or hash().
    args = ["--out", str(tmp_path / "cli"), "--split", "dev", "--entities", "12", "--seed", "3"]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, env=env)
    write(generate("dev", 12, seed=3), tmp_path / "api")
    assert (tmp_path / "cli/questions.jsonl").read_bytes() == (tmp_path / "api/questions.jsonl").read_bytes()
    main = runpy.run_path(str(script))["main"]
    with pytest.raises(SystemExit):
        main(args)  # the directory now holds a dataset
    assert "already holds" in capsys.readouterr().err
    main([*args, "--overwrite"])


def test_train_and_test_names_are_disjoint(test_set):
    train = generate("train", 600, seed=0)
    # different seeds must not help either: the name space itself is split
    other_test = generate("test", 300, seed=1)
    train_names = {meta["name"] for meta in train.entities.values()}
    assert train_names.isdisjoint(meta["name"] for meta in test_set.entities.values())
    assert _invented_words(train).isdisjoint(_invented_words(test_set) | _invented_words(other_test))
    assert {split_of(word) for word in _invented_words(train)} == {"train"}
    assert {split_of(word) for word in _invented_words(other_test)} == {"test"}


def test_names_are_unique_within_a_dataset(test_set):
    keys = [meta["key"] for meta in test_set.entities.values()]
    assert len(keys) == len(set(keys)) == 300
    names = [meta["name"] for meta in test_set.entities.values()]
    assert len(names) == len(set(names))


def test_shape_of_the_dataset(test_set):
    assert len(test_set.documents) == 300
    kinds = Counter(meta["kind"] for meta in test_set.entities.values())
    assert set(kinds) == {spec.kind for spec in KINDS} and len(kinds) >= 5
    words = [len(text.split()) for _, text in test_set.documents]
    assert 60 <= min(words) and max(words) <= 180
    per_doc = Counter(q["doc_ids"][0] for q in test_set.questions)
    assert set(per_doc) == {doc_id for doc_id, _ in test_set.documents}
    assert set(per_doc.values()) <= {1, 2, 3}
    ids = [q["id"] for q in test_set.questions]
    assert len(ids) == len(set(ids))
    # hard distractors: groups of two or three entities of one kind
    groups = Counter(meta["group"] for meta in test_set.entities.values())
    assert max(groups.values()) <= 3 and sum(size >= 2 for size in groups.values()) >= 0.8 * len(groups)


def test_answers_appear_in_the_gold_document(test_set):
    texts = dict(test_set.documents)
    for question in test_set.questions:
        (gold,) = question["doc_ids"]
        document = f" {normalize_answer(texts[gold])} "
        assert question["answers"], question
        for answer in question["answers"]:
            assert f" {normalize_answer(answer)} " in document, (question, texts[gold])
        # the question names its entity, so the gold document is identifiable
        name = test_set.entities[gold]["key"]
        assert name in question["question"]


def test_numbers_have_both_spellings(test_set):
    big = [q for q in test_set.questions if re.fullmatch(r"\d{1,3}(,\d{3})+", q["answers"][0])]
    assert big
    for question in big:
        assert question["answers"][0].replace(",", "") in question["answers"]


def test_cross_references_between_documents(test_set):
    texts = dict(test_set.documents)
    town_names = {meta["name"] for meta in test_set.entities.values() if meta["kind"] == "town"}
    people = [doc_id for doc_id, meta in test_set.entities.items() if meta["kind"] == "person"]
    born_in_a_generated_town = [d for d in people if any(town in texts[d] for town in town_names)]
    assert len(born_in_a_generated_town) >= 10


def _sentence_shapes(text: str) -> set[str]:
    # Mask what varies between entities (names, numbers, value words) to see the template underneath.
    masked = re.sub(r"\d[\d,]*", "#", text)
    masked = re.sub(r"\b[A-Z][a-z]+\b", "X", masked)
    return {s.strip() for s in re.split(r"(?<=\.) ", masked) if s.strip()}


def test_templates_and_fact_order_vary(test_set):
    docs = test_set.documents[:: len(test_set.documents) // 100][:100]
    shapes = set().union(*(_sentence_shapes(text) for _, text in docs))
    assert len(shapes) >= 250
    # no document reads exactly like another once names and numbers are masked
    skeletons = {" ".join(sorted(_sentence_shapes(text))) + str(len(text.split())) for _, text in docs}
    assert len(skeletons) == len(docs)
    # the same fact is not always at the same sentence index
    positions = Counter()
    for doc_id, text in test_set.documents:
        if test_set.entities[doc_id]["kind"] == "person":
            sentences = re.split(r"(?<=\.) ", text)
            positions.update(i for i, s in enumerate(sentences) if "born in 1" in s or "birth" in s)
    assert len(positions) >= 5


def test_question_phrasings_vary(test_set):
    shapes = {re.sub(r"\b[A-Z][a-z]+\b", "X", q["question"]) for q in test_set.questions}
    assert len(shapes) >= 80


def test_write_read_round_trip(tmp_path, test_set):
    write(test_set, tmp_path)
    assert sorted(p.stem for p in (tmp_path / "corpus").glob("*.txt")) == [d for d, _ in test_set.documents]
    assert read(tmp_path) == test_set
    with pytest.raises(FileExistsError):
        write(test_set, tmp_path)
    smaller = generate("test", 5, seed=0)
    write(smaller, tmp_path, overwrite=True)
    assert read(tmp_path) == smaller  # no stale documents survive


def test_read_a_users_dataset_without_entities(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus/paris.txt").write_text("Paris is the capital of France.\n", encoding="utf-8")
    lines = [
        {"id": 1, "question": "What is the capital of France?", "answers": ["Paris"], "doc_ids": ["paris"]},
        {"id": "q2", "question": "Who?", "answers": ["nobody"], "doc_ids": [], "source": "user"},
    ]
    (tmp_path / "questions.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8"
    )
    dataset = read(tmp_path)
    assert dataset.documents == [("paris", "Paris is the capital of France.")]
    assert [q["id"] for q in dataset.questions] == ["1", "q2"]
    assert dataset.questions[1]["source"] == "user"
    assert dataset.entities == {}
    (example,) = list(training_examples(dataset, k=3, rng_seed=0))  # q2 has no gold passage: skipped
    assert example["passages"] == ["Paris is the capital of France."]


GOOD = {"id": "q1", "question": "Who?", "answers": ["Osk"], "doc_ids": ["d1"]}
NEXT = {**GOOD, "id": "q2"}


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"id": "q9", "question": ', "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({k: v for k, v in NEXT.items() if k != "answers"}), "missing key 'answers'"),
        (json.dumps({**NEXT, "answers": []}), "'answers' must be a non-empty list of strings"),
        (json.dumps({**NEXT, "answers": "Osk"}), "'answers' must be a non-empty list of strings"),
        (json.dumps({**NEXT, "doc_ids": ["nowhere"]}), "doc_id 'nowhere' has no file corpus/nowhere.txt"),
        (json.dumps({**NEXT, "question": ""}), "'question' must be a non-empty string"),
        (json.dumps({**GOOD, "id": None}), "'id' must be a string or an integer"),
        (json.dumps(GOOD), "duplicate question id 'q1'"),
    ],
)
def test_malformed_questions_name_file_and_line(tmp_path, bad_line, message):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus/d1.txt").write_text("Osk was a clockmaker.", encoding="utf-8")
    path = tmp_path / "questions.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + bad_line + "\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError) as error:
        read(tmp_path)
    text = str(error.value)
    assert text.startswith(f"{path}:3: ") and message in text
    assert "\n" not in text


def test_missing_parts_are_clear_errors(tmp_path):
    with pytest.raises(DatasetFormatError, match="corpus directory not found"):
        read(tmp_path)
    (tmp_path / "corpus").mkdir()
    with pytest.raises(DatasetFormatError, match="questions.jsonl: file not found"):
        read(tmp_path)


def test_training_examples(test_set):
    examples = list(training_examples(test_set, k=5, rng_seed=0))
    assert len(examples) == len(test_set.questions)
    assert examples == list(training_examples(test_set, k=5, rng_seed=0))
    texts = dict(test_set.documents)
    last = 0
    for example in examples:
        assert set(example) >= {"question", "answer", "passages"}
        assert len(example["passages"]) == len(set(example["doc_ids"])) == 5
        gold = example["doc_ids"][example["gold_index"]]
        question = next(q for q in test_set.questions if q["id"] == example["id"])
        assert [gold] == question["doc_ids"] and example["answer"] == question["answers"][0]
        assert example["passages"] == [texts[d] for d in example["doc_ids"]]
        # hard distractors: with 300 documents, same-kind documents fill every slot
        kinds = {test_set.entities[d]["kind"] for d in example["doc_ids"]}
        named = test_set.entities[gold]["key"]
        assert len(kinds) == 1 or any(named in texts[d] for d in example["doc_ids"] if d != gold)
        last += example["gold_index"] == 4
    assert 0.5 < last / len(examples) < 0.7  # gold last with probability 0.6
    positions = Counter(example["gold_index"] for example in examples)
    assert set(positions) == {0, 1, 2, 3, 4}


def test_training_examples_with_a_distractor_pool():
    dataset = generate("train", 6, seed=0)  # one entity per kind: few hard distractors
    pool = [f"Unrelated passage number {i}." for i in range(50)]
    examples = list(training_examples(dataset, k=4, rng_seed=1, distractor_pool=pool))
    assert all(len(e["passages"]) == 4 for e in examples)
    assert any(None in e["doc_ids"] for e in examples)
    for example in examples:
        for text, doc_id in zip(example["passages"], example["doc_ids"]):
            assert (text in pool) == (doc_id is None)
    with pytest.raises(ValueError):
        next(training_examples(dataset, k=0, rng_seed=0))
