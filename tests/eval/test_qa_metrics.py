"""QA metrics: normalisation, exact match, token F1, answer cleaning, aggregation."""

import pytest

from ragcompress.eval.qa_metrics import (
    QAScores,
    exact_match,
    f1,
    first_answer_span,
    normalize_answer,
    score_predictions,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Osla River.", "osla river"),
        ("  a   Clockmaker ", "clockmaker"),
        ("12,400", "12400"),
        ("1,234,567 people", "1234567 people"),
        ("12.5 km", "12.5 km"),
        ("Tarvel Osk's", "tarvel osks"),
        ("Neistaeth & Sons", "neistaeth sons"),
        ("“Halvig”", "halvig"),
        ("an", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_worked_examples():
    assert exact_match("12400", ["12,400"]) == 1.0
    assert exact_match("the Osla River", ["Osla River", "Osla"]) == 1.0
    assert exact_match("Osla", ["Osla River", "Osla"]) == 1.0
    assert exact_match("River Osla", ["Osla River"]) == 0.0
    assert exact_match("125", ["12.5"]) == 0.0
    assert exact_match("1873.", ["1873"]) == 1.0


def test_f1_worked_examples():
    # "tarvel osk" vs "osk": precision 1/2, recall 1/1 -> F1 = 2/3
    assert f1("Tarvel Osk", ["Osk"]) == pytest.approx(2 / 3)
    # the best answer counts: "tarvel osk" matches the full name exactly
    assert f1("Tarvel Osk", ["Osk", "Tarvel Osk"]) == 1.0
    # "born in 1873" vs "1873": precision 1/3, recall 1 -> F1 = 0.5
    assert f1("born in 1873", ["1873"]) == pytest.approx(0.5)
    # token order does not matter for F1, only for EM
    assert f1("River Osla", ["Osla River"]) == 1.0
    assert f1("Lake Peiver", ["the Osla River"]) == 0.0
    # repeated tokens are counted once per occurrence: "osk osk" vs "osk" -> P 1/2, R 1 -> 2/3
    assert f1("Osk Osk", ["Osk"]) == pytest.approx(2 / 3)


def test_empty_prediction_and_answer_lists():
    assert f1("", ["Osk"]) == 0.0
    assert exact_match("", ["Osk"]) == 0.0
    assert f1("the", ["a"]) == 1.0  # both normalise to nothing
    with pytest.raises(ValueError):
        exact_match("Osk", [])
    with pytest.raises(TypeError):
        f1("Osk", "Osk")


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        (" 1873.\nQuestion: When was ...", "1873"),
        ("\n\nAnswer: Tarvel Osk<|im_end|>extra", "Tarvel Osk"),
        ('"the Halvig".', "the Halvig"),
        ("“Lake Peiver.”", "Lake Peiver"),
        ("The answer is 12,400 </s>", "12,400"),
        ("Answering machines", "Answering machines"),
        ("", ""),
    ],
)
def test_first_answer_span(generated, expected):
    assert first_answer_span(generated) == expected


def test_scores_aggregate_and_merge():
    scores = score_predictions(["1873\nmore", "Osk", "wrong"], [["1873"], ["Tarvel Osk"], ["right"]])
    assert scores.n == 3
    assert scores.em == pytest.approx(1 / 3)
    assert scores.f1 == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert QAScores.aggregate([]) == QAScores(0.0, 0.0, 0)
    merged = QAScores(1.0, 1.0, 1).merge(QAScores(0.0, 0.5, 3))
    assert merged == QAScores(em=0.25, f1=pytest.approx(0.625), n=4)
    assert merged.as_dict() == {"em": 0.25, "f1": 0.625, "n": 4}
    with pytest.raises(ValueError):
        score_predictions(["a"], [])


@pytest.mark.parametrize(
    ("answers", "kind"),
    [
        (["1346"], "year"),
        (["2019", "in 2019"], "year"),
        (["12,400", "12400"], "number"),
        (["3.5"], "number"),
        (["880"], "number"),
        (["Thastesern Grihofern", "Grihofern"], "name"),
        (["turquoise"], "word"),
        (["a clockmaker"], "word"),
    ],
)
def test_answer_kind(answers, kind):
    from ragcompress.eval.qa_metrics import answer_kind

    assert answer_kind(answers) == kind


def test_scores_by_answer_kind_partition_the_overall_scores():
    from ragcompress.eval.qa import QAResult

    questions = [
        {"id": "a", "answers": ["1346"]},
        {"id": "b", "answers": ["Osla River"]},
        {"id": "c", "answers": ["1720"]},
        {"id": "d", "answers": ["violin"]},
    ]
    rows = [
        {"id": "a", "em": 1.0, "f1": 1.0},
        {"id": "b", "em": 0.0, "f1": 0.5},
        {"id": "c", "em": 0.0, "f1": 0.0},
        {"id": "d", "em": 1.0, "f1": 1.0},
    ]
    result = QAResult(k=3, recall_at_k=1.0, predictions={"fused": rows})
    result.score_kinds(questions)
    by_kind = result.scores_by_kind["fused"]
    assert by_kind == {
        "year": {"em": 0.5, "f1": 0.5, "n": 2},
        "name": {"em": 0.0, "f1": 0.5, "n": 1},
        "word": {"em": 1.0, "f1": 1.0, "n": 1},
    }
    assert "EM by answer kind (n): year (2), name (1), word (1)" in result.table()
    with pytest.raises(ValueError, match="no question with id 'd'"):
        result.score_kinds(questions[:3])
