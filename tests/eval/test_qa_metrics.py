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


def _qa_result(right: set[int], n: int = 40, mode: str = "fused"):
    from ragcompress.eval.qa import QAResult

    rows = [{"id": f"q{i}", "em": float(i in right), "f1": float(i in right)} for i in range(n)]
    return QAResult(k=5, recall_at_k=1.0, predictions={mode: rows})


def test_compare_qa_counts_paired_answers_and_runs_an_exact_sign_test(tmp_path):
    import math

    from ragcompress.eval.qa import QAResult, compare_qa

    a = _qa_result(set(range(0, 20)))  # right on q0..q19
    b = _qa_result(set(range(2, 30)))  # loses q0, q1; gains q20..q29
    result = compare_qa(a, b)
    assert (result["both"], result["only_a"], result["only_b"], result["neither"]) == (18, 2, 10, 10)
    assert result["em_a"] == 0.5 and result["em_b"] == 0.7
    # two-sided: twice the chance of 2 or fewer of 12 coin flips landing on A's side
    expected = 2 * sum(math.comb(12, j) for j in range(3)) / 2**12
    assert result["p_value"] == pytest.approx(expected) and result["p_value"] < 0.05
    assert compare_qa(b, a)["p_value"] == pytest.approx(expected)  # symmetric
    assert compare_qa(a, a)["p_value"] == 1.0 and compare_qa(a, a)["only_b"] == 0

    a.save(tmp_path / "a.json")
    assert QAResult.load(tmp_path / "a.json") == a
    with pytest.raises(ValueError, match="different questions"):
        compare_qa(a, _qa_result(set(), n=39))
    with pytest.raises(ValueError, match="B.json: no 'fused' predictions"):
        compare_qa(a, _qa_result(set(), mode="text"), names=("A.json", "B.json"))
    with pytest.raises(ValueError, match="not a saved QA result"):
        QAResult.load(tmp_path / "missing.json")


def test_cli_compares_qa_results_and_refuses_mixed_kinds(tmp_path):
    from typer.testing import CliRunner

    from ragcompress.cli import app

    _qa_result(set(range(0, 20))).save(tmp_path / "a.json")
    _qa_result(set(range(2, 30))).save(tmp_path / "b.json")
    runner = CliRunner()
    done = runner.invoke(app, ["eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert done.exit_code == 0, done.output
    assert "40 shared questions, fused mode: EM A 0.500, B 0.700" in done.output
    assert "A: k = 5; B: k = 5\n" in done.output  # which run of each file was compared
    other = _qa_result(set(range(2, 30)))
    other.k, other.meta = 10, {"vector_dtype": "int8"}
    other.save(tmp_path / "c.json")
    done = runner.invoke(app, ["eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "c.json")])
    assert "A: k = 5; B: k = 10, int8 vectors (not the same settings" in done.output
    assert "only A 2, only B 10" in done.output and "p = 0.039" in done.output
    (tmp_path / "ppl.json").write_text('{"rows": []}')
    mixed = runner.invoke(app, ["eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "ppl.json")])
    assert mixed.exit_code == 2 and "is a QA result and the other is not" in mixed.output


def test_qa_modes_are_checked_before_anything_loads(tmp_path):
    from typer.testing import CliRunner

    from ragcompress.cli import app

    done = CliRunner().invoke(app, ["eval", "qa", str(tmp_path), "--modes", "text,fused-extract"])
    assert done.exit_code == 2
    assert "--modes: 'fused-extract' is not one of none, text, fused, text-extractive" in done.output
