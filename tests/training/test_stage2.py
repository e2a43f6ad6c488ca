"""Stage 2 (fused-QA answers): example resampling by answer kind, and the QA loss really trains.

The training test runs the real stage-2 path (passages compressed in the same graph, chat-template
prompts, answer + end-of-turn targets) with the real SmolLM2 tokenizer and a tiny random compressor.
"""

from collections import Counter

import pytest
from helpers import tiny_train_config
from tiny import EOS, PAD, tiny_tokenizer

from ragcompress.data.qa_dataset import write
from ragcompress.eval.qa_metrics import answer_kind
from ragcompress.training import TrainConfig, train
from ragcompress.training.qa_data import QAExamples
from ragcompress.training.steps import _pad_right
from ragcompress_tools.synthqa import generate


@pytest.fixture(scope="module")
def qa_dir(tmp_path_factory):
    return str(write(generate("train", 40, seed=0), tmp_path_factory.mktemp("synthqa") / "train"))


def _kinds(examples: QAExamples) -> Counter:
    return Counter(answer_kind(e["answers"]) for e in examples.examples)


def test_kind_weights_resample_the_examples(qa_dir):
    plain = QAExamples([qa_dir], k=3, seed=0)
    base = _kinds(plain)
    assert set(base) == {"year", "number", "name", "word"}, base

    weighted = _kinds(QAExamples([qa_dir], k=3, seed=0, kind_weights={"year": 3, "number": 2, "word": 0}))
    assert weighted == {"year": 3 * base["year"], "number": 2 * base["number"], "name": base["name"]}

    half = QAExamples([qa_dir], k=3, seed=0, kind_weights={"name": 0.5})
    assert 0.3 * base["name"] < _kinds(half)["name"] < 0.7 * base["name"]
    again = QAExamples([qa_dir], k=3, seed=0, kind_weights={"name": 0.5})
    assert [e["question"] for e in half.examples] == [e["question"] for e in again.examples]
    # the text-mode share of an example does not depend on the weights
    text_mode = {e["question"]: e["text_mode"] for e in plain.examples}
    assert all(text_mode[e["question"]] == e["text_mode"] for e in half.examples)

    with pytest.raises(ValueError, match="left none"):
        QAExamples([qa_dir], k=3, seed=0, kind_weights=dict.fromkeys(("year", "number", "name", "word"), 0))


@pytest.mark.parametrize(
    ("weights", "message"),
    [({"dates": 2}, "answer kinds are"), ({"year": -1}, "must be a number ≥ 0"), ([1], "must map")],
)
def test_kind_weights_are_checked(weights, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(qa_data=["x"], qa_kind_weights=weights).validate()


def test_kind_weights_come_from_yaml_overrides():
    cfg = TrainConfig(qa_data=["x"]).override(["qa_kind_weights={year: 3, number: 2.5}"])
    cfg.validate()
    assert cfg.qa_kind_weights == {"year": 3, "number": 2.5}


@pytest.mark.e2e
def test_stage_two_answer_loss_falls(qa_dir, tmp_path):
    from tests.indexing.pipeline_helpers import save_tiny_compressor

    model_dir = save_tiny_compressor(tmp_path / "tiny")
    cfg = tiny_train_config(
        "unused",
        "unused",
        tmp_path / "run",
        model=str(model_dir),
        summary_length=4,
        train_data=[],
        valid_data=[],
        qa_data=[qa_dir],
        qa_k=2,
        qa_batch_size=8,
        qa_passage_tokens=64,
        qa_text_fraction=0.25,
        qa_kind_weights={"year": 2},
        lora=False,
        learning_rate=3e-3,
        warmup_steps=5,
        max_steps=60,
        log_every=1,
    )
    result = train(cfg)
    losses = [row["qa_loss"] for row in result.history]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    # a random 49k-token model starts near ln(49152) ≈ 10.8 and must learn the answer format and values
    assert first > 8 and last < first - 4, (first, last)  # measured 10.73 → 5.79


def test_text_mode_and_resampling_do_not_depend_on_where_the_data_lies(qa_dir, tmp_path):
    import shutil

    moved = shutil.copytree(qa_dir, tmp_path / "elsewhere" / "qa")
    weights = {"name": 0.5, "year": 2}
    here = QAExamples([qa_dir], k=3, seed=0, text_fraction=0.3, kind_weights=weights)
    there = QAExamples([str(moved)], k=3, seed=0, text_fraction=0.3, kind_weights=weights)
    assert [(e["question"], e["text_mode"]) for e in here.examples] == [
        (e["question"], e["text_mode"]) for e in there.examples
    ]
    assert 0 < sum(e["text_mode"] for e in here.examples) < len(here)


def test_qa_batches_pad_on_the_right_whatever_the_tokenizer_side():
    """`tokenizer.pad` right-pads stage-2 rows even for a tokenizer set up to pad generation on the left."""
    tokenizer = tiny_tokenizer()
    tokenizer.padding_side = "left"
    ids, mask = _pad_right(tokenizer, [[5, 6, 7], [8], [9, 10]], "cpu")
    assert ids.tolist() == [[5, 6, 7], [8, PAD, PAD], [9, 10, PAD]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert tokenizer.padding_side == "left"  # the tokenizer's own setting is left alone
    tokenizer.pad_token = tokenizer.eos_token  # what the trainer sets for a tokenizer without a pad token
    assert _pad_right(tokenizer, [[5, 6], [7]], "cpu")[0].tolist() == [[5, 6], [7, EOS]]
