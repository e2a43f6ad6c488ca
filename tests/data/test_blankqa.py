"""Blank-QA training data (ragcompress_tools.blankqa, scripts/make_blankqa.py) on a small hand-made corpus."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from ragcompress.data.qa_dataset import read, write
from ragcompress.eval.heldout import HELDOUT_FIELD, refuse_heldout
from ragcompress.training.qa_data import QAExamples
from ragcompress_tools.blankqa import BLANK, TEMPLATES, BlankQAConfig, WordStats, find_spans, make_blankqa
from ragcompress_tools.blankqa.build import MAX_KIND_SHARE, MIN_ANSWER_REPEATS
from ragcompress_tools.blankqa.passages import Passage, cut_passages, proxy_token_counts, sentences
from scripts.make_blankqa import main

REPO = Path(__file__).resolve().parents[2]
HELDOUT_IDS = [
    line.strip()
    for line in (REPO / "evalsets" / "realdocs" / "documents.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
NAMES = ["Jane Fairfax", "Harriet Smith", "Frank Churchill", "Robert Martin", "Philip Elton", "Anne Weston"]
PLACES = ["Highbury", "Randalls", "Donwell", "Hartfield", "Kingston", "Richmond"]


def _austen(i: int) -> str:
    name, other, place = NAMES[i % 6], NAMES[(i + 2) % 6], PLACES[i % 6]
    return (
        f"CHAPTER {i}\n\n"
        f"It was a quiet morning when the letter came, and everybody said that {name} had written it\n"
        f"from {place} before breakfast. The house had been let for {['seven', 'twelve', 'forty'][i % 3]} years\n"
        "to a family who were rarely seen in the village.\n\n"
        f"The visit was fixed for the {i + 3}th of the month, and {other} promised to bring the carriage.\n"
        f"Nobody doubted that {place} would be full of people by the evening, for the ball had been\n"
        "talked of for weeks.\n\n"
        f"She walked with {name} as far as the church, where they parted with many assurances of regard.\n"
        "The weather was fine, the road was dry, and the conversation was pleasant enough for both of them."
    )


def _linux(i: int) -> str:
    return (
        f"Device driver {i}\n================\n\n"
        f"The driver was merged in {1990 + i} and supports kernel version {i % 5 + 2}.{i % 7 + 1} or later.\n"
        f"Its tunables live under /proc/sys/kernel/drv{i} and are read at probe time.\n\n"
        f"Run the tool with ``--max-depth={i + 2}`` to limit the scan, or set CONFIG_DRV{i}_DEBUG to get\n"
        f"verbose messages. The buffer holds {64 * (i + 1)} entries of {i + 8} bytes each.\n\n"
        "::\n\n    echo 1 > /sys/module/drv/parameters/debug\n    cat /proc/drv\n\n"
        f"The function drv_probe_{i}() is called once for every matching device on the bus.\n"
        f"It returns zero on success and a negative error code such as EINVAL otherwise."
    )


def _python(i: int) -> str:
    return (
        f":mod:`mod{i}` --- Helpers\n==================\n\n"
        f"The :func:`helper{i}` function was added in Python 3.{i % 12} to replace the older interface.\n"
        f"Call os.path.join() to build the path, then pass it as the *target* argument of :class:`Runner{i}`.\n\n"
        f"The default timeout is {i + 1}.5 seconds, and the module raises :exc:`TimeoutError` when it expires.\n"
        f'Such a value is called a "soft limit" by the documentation of the module number {i}.'
    )


def _write_corpus(root: Path, heldout_in_train: bool = False) -> Path:
    corpus = root / "corpus-src"
    makers = {"austen": ("austen/emma#{:05d}", _austen), "linux-docs": ("linux-docs/drv{}#00000", _linux)}
    makers["python-docs"] = ("python-docs/library/mod{}#00000", _python)
    for source, (id_format, make) in makers.items():
        (corpus / source).mkdir(parents=True)
        train = [{"id": id_format.format(i), "source": source, "text": make(i)} for i in range(12)]
        held = [i for i in HELDOUT_IDS if i.startswith(source + "/")]
        # the evaluation pages sit in validation/test, as scripts/build_corpus.py keeps them
        other = [
            {"id": doc_id, "source": source, "text": f"HELDOUT page {doc_id}. " + make(99)} for doc_id in held
        ]
        if heldout_in_train:  # an old corpus built before the held-out list existed
            train += other
        for split, rows in (("train", train), ("validation", other), ("test", other)):
            with open(corpus / source / f"{split}.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(row) + "\n" for row in rows)
    return corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return _write_corpus(tmp_path_factory.mktemp("blankqa"))


@pytest.fixture(scope="module")
def dataset_dir(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("blankqa-out") / "set"
    args = ["--corpus", str(corpus), "--out", str(out), "--proxy-tokens", "--max-questions", "200"]
    assert main([*args, "--per-passage", "5", "--sources", "austen,linux-docs,python-docs"]) == 0
    return out


def _spans(sentence: str, stats: WordStats | None = None) -> dict[str, str]:
    return {sentence[s.start : s.end]: s.kind for s in find_spans(sentence, stats)}


def test_kinds_on_handwritten_sentences():
    assert _spans("The tomllib module was added in Python 3.11 for reading TOML.")["3.11"] == "number"
    assert _spans("Lincoln took office in 1861 after a close election.")["1861"] == "year"
    assert (
        _spans("The sysctl files live under /proc/sys/kernel on every system.")["/proc/sys/kernel"] == "code"
    )
    assert _spans("Pass --max-depth to stop the walk after a few levels.")["--max-depth"] == "code"
    assert _spans("Emma was glad to see Jane Fairfax at the party.")["Jane Fairfax"] == "name"
    found = _spans("On March 3, 1810 they called os.path.join() with CONFIG_FOO and *lazy* mode set.")
    assert found == {"March 3, 1810": "date", "os.path.join()": "code", "CONFIG_FOO": "code", "lazy": "term"}
    assert _spans("It holds 4KiB, reads ``buffer size`` and costs twenty-one pounds.") == {
        "4KiB": "number",
        "buffer size": "term",
        "twenty-one": "number",
    }


def test_sphinx_roles_name_code():
    sentence = (
        "Use :meth:`recv` on :class:`~socket.socket` objects, not ``raw mode`` or :keyword:`!for` loops."
    )
    assert _spans(sentence) == {"recv": "code", "socket.socket": "code", "raw mode": "term", "for": "code"}


def test_what_is_not_a_span():
    # a sentence's first word, a dash in prose, a common word (by the corpus counts), a list number
    stats = WordStats(["the cat sat on the mat; then the dog came. The end. the the"])
    assert _spans("Then the dog came over to see Emma.", stats) == {"Emma": "name"}
    assert _spans('"Civil!--Did you see nothing but The civility?"', stats) == {}
    assert _spans("12 men walked to the fair that day.", stats) == {}
    prose = "She stopped --and looked at Mr.Knightley's sys.path again."
    assert {prose[s.start : s.end] for s in find_spans(prose, code=False)} == set()
    assert {prose[s.start : s.end]: s.kind for s in find_spans(prose)} == {
        "--and": "code",
        "Mr.Knightley": "code",
        "sys.path": "code",
    }


def test_passages_fit_and_sentences_are_clean():
    text = "\n\n".join(_linux(i) for i in range(6))
    passages = cut_passages("linux-docs/x#00000", "linux-docs", text, 120, proxy_token_counts)
    assert len(passages) > 3
    assert all(max(proxy_token_counts([p.text])) <= 120 for p in passages)
    for passage in passages:
        for start, end in sentences(passage):
            sentence = passage.text[start:end]
            assert "====" not in sentence and "echo 1" not in sentence  # headings, literal blocks
            assert 6 <= len(sentence.split()) <= 60 and sentence[-1] in ".!?"
    one = Passage(
        "a", 0, "austen", "Mr. Knightley came in. He sat down by the fire and spoke to Mrs. Weston at last."
    )
    assert [one.text[s:e] for s, e in sentences(one)] == [
        "He sat down by the fire and spoke to Mrs. Weston at last."
    ]


def test_same_arguments_give_identical_bytes(corpus, tmp_path):
    config = BlankQAConfig(sources=("austen", "linux-docs", "python-docs"), max_questions=60, seed=3)
    first, second = (write(make_blankqa(corpus, config), tmp_path / name) for name in ("a", "b"))
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    other = write(
        make_blankqa(corpus, BlankQAConfig(max_questions=60, seed=4, sources=config.sources)), tmp_path / "c"
    )
    assert (other / "questions.jsonl").read_bytes() != (first / "questions.jsonl").read_bytes()


def _sentence_of(question: str) -> str:
    for template in TEMPLATES:
        before, after = template.split("{s}")
        match = re.fullmatch(re.escape(before) + "(.*)" + re.escape(after), question)
        if match:
            return match.group(1)
    raise AssertionError(f"no template makes {question!r}")


def test_answers_are_verbatim_and_blanks_replace_only_the_span(dataset_dir):
    dataset = read(dataset_dir)
    texts = dict(dataset.documents)
    assert len(dataset.questions) >= 100
    for question in dataset.questions:
        (answer,), (doc_id,) = question["answers"], question["doc_ids"]
        passage = texts[doc_id]
        assert answer in passage and answer not in question["question"]
        sentence = _sentence_of(question["question"])
        assert sentence.count(BLANK) == 1
        # the passage's sentence (line breaks as spaces), with only the span put back
        assert sentence.replace(BLANK, answer) in " ".join(passage.split())
        assert question["kind"] in {"number", "year", "date", "name", "code", "term"}
        assert HELDOUT_FIELD not in question
    refuse_heldout(dataset.questions, dataset_dir)  # trainable: no held-out marker anywhere


def test_kinds_are_mixed_and_capped(dataset_dir):
    questions = read(dataset_dir).questions
    kinds = Counter(q["kind"] for q in questions)
    assert {"number", "year", "name", "code", "term"} <= set(kinds)
    assert max(kinds.values()) <= MAX_KIND_SHARE * len(questions)
    answers = Counter(q["answers"][0].casefold() for q in questions)
    assert max(answers.values()) <= MIN_ANSWER_REPEATS  # 200 asked: the floor of the per-answer cap
    sources = Counter(q["source"] for q in questions)
    assert set(sources) == {"austen", "linux-docs", "python-docs"}
    assert len({_template_of(q["question"]) for q in questions}) == len(TEMPLATES)


def _template_of(question: str) -> str:
    sentence = _sentence_of(question)
    return question.replace(sentence, "{s}")


def test_stage2_loads_the_set(dataset_dir):
    examples = QAExamples([str(dataset_dir)], k=5, seed=0)
    assert len(examples) == 4 * len(read(dataset_dir).questions)  # 4 distractor draws per question
    for example in examples.examples[:50]:
        assert len(example["passages"]) == 5
        assert example["answer"] in example["passages"][example["gold_index"]]


@pytest.mark.parametrize("heldout_in_train", [False, True])
def test_only_train_splits_and_never_the_heldout_pages(tmp_path, heldout_in_train):
    corpus = _write_corpus(tmp_path, heldout_in_train=heldout_in_train)
    config = BlankQAConfig(sources=("austen", "linux-docs", "python-docs"), max_questions=1000, per_passage=5)
    dataset = make_blankqa(corpus, config)
    assert dataset.questions
    assert not any("HELDOUT" in text or "module number 99" in text for _, text in dataset.documents)


def test_the_script_prints_counts_and_refuses_bad_input_in_one_line(corpus, tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["--corpus", str(corpus), "--out", str(out), "--proxy-tokens", "--sources", "austen"]) == 0
    printed = capsys.readouterr().out
    assert "austen" in printed and "total" in printed and "name" in printed
    assert main(["--corpus", str(corpus), "--out", str(out), "--proxy-tokens", "--sources", "austen"]) == 2
    assert "already holds a QA dataset" in capsys.readouterr().err
    for args, message in (
        (["--corpus", str(tmp_path / "missing")], "corpus directory not found"),
        (["--corpus", str(corpus), "--sources", "austen,wikipedia"], "unknown source wikipedia"),
        (["--corpus", str(corpus), "--sources", "gcide"], "gcide/train.jsonl: not found"),
    ):
        assert main([*args, "--out", str(tmp_path / "x"), "--proxy-tokens"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
