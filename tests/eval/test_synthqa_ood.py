"""The out-of-distribution synthetic QA set (`synthqa.generate(style="ood")`): determinism, no wording
shared with the training generator, answers in the gold documents, every kind and shape, and refusal
as training data."""

import argparse
import filecmp
import importlib.util
import json
import re
import runpy
from collections import Counter
from pathlib import Path

import pytest

from ragcompress.data.qa_dataset import SynthQA, read, write
from ragcompress.eval.heldout import HELDOUT_FIELD, HeldOutDataError, refuse_heldout_dir
from ragcompress.training.qa_data import QAExamples
from ragcompress_tools.synthqa import generate
from ragcompress_tools.synthqa.kinds import CONFUSION_SENTENCES, GENERIC_FILLERS, KINDS
from ragcompress_tools.synthqa.names import split_of
from ragcompress_tools.synthqa.ood import HELDOUT_TAG, SHAPES
from ragcompress_tools.synthqa.ood import KINDS as OOD_KINDS
from ragcompress_tools.synthqa.ood_parts import ANSWER_KINDS

REPO = Path(__file__).resolve().parents[2]
SHINGLE = 6
_FIELD = re.compile(r"\{[A-Za-z]+\}")


@pytest.fixture(scope="module")
def ood() -> SynthQA:
    return generate("test", 300, seed=0, style="ood")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+|\x00", text.lower())


def _training_templates() -> list[str]:
    texts = list(CONFUSION_SENTENCES) + list(GENERIC_FILLERS)
    for spec in KINDS:
        texts += list(spec.intros) + list(spec.fillers)
        for fact in spec.facts:
            texts += list(fact.sentences) + list(fact.questions)
    return texts


def _template_shingles() -> set[tuple]:
    """6-word runs of the training templates; a template field ({s}, {v}, ...) matches any one word.

    Runs of fields only (or nearly) would match anything, so a run needs at least 4 literal words.
    """
    shingles = set()
    for template in _training_templates():
        words = _words(_FIELD.sub(" \x00 ", template))
        for i in range(len(words) - SHINGLE + 1):
            run = tuple(None if w == "\x00" else w for w in words[i : i + SHINGLE])
            if sum(w is not None for w in run) >= 4:
                shingles.add(run)
    return shingles


def _shared_shingles(texts: list[str], shingles: set[tuple]) -> set[tuple]:
    masks = {tuple(w is None for w in run) for run in shingles}
    found = set()
    for text in texts:
        words = _words(text)
        for i in range(len(words) - SHINGLE + 1):
            run = words[i : i + SHINGLE]
            for mask in masks:
                key = tuple(None if m else w for w, m in zip(run, mask))
                if key in shingles:
                    found.add(key)
    return found


def test_the_shingle_check_finds_training_wording():
    # the check itself must work: a default-style document shares runs with its own templates
    shingles = _template_shingles()
    default = generate("test", 30, seed=0)
    assert _shared_shingles([text for _, text in default.documents], shingles)
    assert _shared_shingles([q["question"] for q in default.questions], shingles)


def test_no_six_word_run_of_the_training_templates(ood):
    shingles = _template_shingles()
    assert len(shingles) > 100
    assert _shared_shingles([text for _, text in ood.documents], shingles) == set()
    assert _shared_shingles([q["question"] for q in ood.questions], shingles) == set()


def test_same_seed_same_bytes_and_the_cli_agrees(tmp_path):
    write(generate("dev", 40, seed=3, style="ood"), tmp_path / "a")
    write(generate("dev", 40, seed=3, style="ood"), tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 40 + 2
    assert filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", files, shallow=False)[1:] == ([], [])
    assert (
        generate("dev", 40, seed=4, style="ood").documents
        != generate("dev", 40, seed=3, style="ood").documents
    )
    main = runpy.run_path(str(REPO / "scripts/make_synthqa.py"))["main"]
    main(
        [
            "--out",
            str(tmp_path / "cli"),
            "--style",
            "ood",
            "--split",
            "dev",
            "--entities",
            "40",
            "--seed",
            "3",
        ]
    )
    assert (tmp_path / "cli/questions.jsonl").read_bytes() == (tmp_path / "a/questions.jsonl").read_bytes()


def test_evaluation_splits_only_and_known_styles(capsys, tmp_path):
    with pytest.raises(ValueError, match="never training data"):
        generate("train", 10, seed=0, style="ood")
    with pytest.raises(ValueError, match="unknown style"):
        generate("test", 10, seed=0, style="other")
    main = runpy.run_path(str(REPO / "scripts/make_synthqa.py"))["main"]
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x"), "--style", "ood", "--split", "train"])
    assert "never training data" in capsys.readouterr().err


def test_answers_are_written_verbatim_in_the_gold_document(ood):
    texts = dict(ood.documents)
    assert len(ood.questions) >= 300
    for q in ood.questions:
        (gold,) = q["doc_ids"]
        assert all(answer in texts[gold] for answer in q["answers"]), q
        assert q["kind"] in ANSWER_KINDS and q["shape"] in SHAPES and q[HELDOUT_FIELD] == HELDOUT_TAG


def test_every_entity_kind_answer_kind_and_shape_occurs(ood):
    entity_kinds = Counter(meta["kind"] for meta in ood.entities.values())
    assert set(entity_kinds) == {kind.kind for kind in OOD_KINDS}
    assert set(entity_kinds).isdisjoint(spec.kind for spec in KINDS)  # not the training kinds
    assert set(Counter(q["kind"] for q in ood.questions)) == set(ANSWER_KINDS)
    assert set(Counter(q["shape"] for q in ood.questions)) == set(SHAPES)
    # every fact of every kind gets asked about somewhere, in more than one phrasing overall
    asked, phrasings = set(), set()
    for q in ood.questions:
        meta = ood.entities[q["doc_ids"][0]]
        kind = next(k for k in OOD_KINDS if k.kind == meta["kind"])
        for fact in kind.facts:
            for ask in fact.asks:
                if (
                    q["question"]
                    == ask.format(E=meta["name"]).capitalize()[:1] + ask.format(E=meta["name"])[1:]
                ):
                    asked.add((kind.kind, fact.key))
                    phrasings.add(ask)
    assert asked == {(k.kind, f.key) for k in OOD_KINDS for f in k.facts}
    assert len(phrasings) > len(asked)
    ids = [q["id"] for q in ood.questions]
    assert len(ids) == len(set(ids))


def test_invented_words_never_fall_in_the_training_name_space(ood):
    keys = [meta["key"] for meta in ood.entities.values()]
    assert len(keys) == len(set(keys)) == 300
    assert {split_of(key) for key in keys} == {"test"}
    default_train = generate("train", 300, seed=0)
    assert set(keys).isdisjoint(meta["key"] for meta in default_train.entities.values())


def test_the_held_out_marker_survives_a_round_trip(tmp_path, ood):
    back = read(write(ood, tmp_path / "ood"))
    assert back.questions == ood.questions
    with pytest.raises(HeldOutDataError, match="synthqa-ood"):
        refuse_heldout_dir(tmp_path / "ood")


def test_stage_two_refuses_the_ood_set(tmp_path):
    ood_dir = write(generate("test", 12, seed=0, style="ood"), tmp_path / "ood")
    default_dir = write(generate("train", 12, seed=0), tmp_path / "train")
    assert len(QAExamples([str(default_dir)], k=3, seed=0, variants=1)) > 0
    with pytest.raises(HeldOutDataError, match="cannot be used for training"):
        QAExamples([str(default_dir), str(ood_dir)], k=3, seed=0, variants=1)
    # even one marked question, copied into otherwise trainable data, is refused
    marked = json.loads((ood_dir / "questions.jsonl").read_text().splitlines()[0])
    with open(default_dir / "questions.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({**marked, "doc_ids": []}) + "\n")
    with pytest.raises(HeldOutDataError):
        QAExamples([str(default_dir)], k=3, seed=0, variants=1)


def test_train_default_refuses_the_ood_set_before_loading_a_model(tmp_path):
    spec = importlib.util.spec_from_file_location("train_default", REPO / "scripts/train_default.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    ood_dir = write(generate("test", 12, seed=0, style="ood"), tmp_path / "ood")
    args = argparse.Namespace(
        work=tmp_path / "work", base="smollm2", max_seconds=None, no_lm=True, corpus=tmp_path, qa_entities=6
    )
    assert script.stage_config("stage2", args, [])  # the default-style data passes
    with pytest.raises(SystemExit, match="held-out evaluation data"):
        script.stage_config("stage2", args, [f"qa_data={json.dumps([str(ood_dir)])}"])
