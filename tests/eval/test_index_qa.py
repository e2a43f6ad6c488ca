"""`ragcompress eval qa` through the product path (index_corpus + Retriever.answer_batch), end to end.

The fast tests use the tiny random-weight compressor of the indexing tests with the real default
embedder: its answers are noise, so they check the report's structure and that its numbers agree with
one another. The e2e test uses the embedded default model on a small synthetic set and checks what the
model is for: fused summary vectors answer questions that the model cannot answer without retrieval.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcompress.cli import app
from ragcompress.data.qa_dataset import write
from ragcompress.eval.qa import QAResult
from ragcompress_tools.synthqa import generate
from tests.indexing import pipeline_helpers as helpers

tiny_compressor_dir = helpers.tiny_compressor_dir
tiny_embedder_dir = helpers.tiny_embedder_dir
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_default.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def invoke(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result.output


def refused(*args) -> str:
    """A one-line error with exit code 2."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    return " ".join(result.output.split())


def assert_png(path) -> None:
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC
    height, width, _ = imread(path).shape  # decodes the whole image: a truncated file fails here
    assert width >= 400 and height >= 300


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write(generate("test", 4, seed=3), tmp_path_factory.mktemp("synthqa") / "set")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, dataset, tiny_compressor_dir):
    """Two dtypes × two k × three modes with the tiny compressor, written under out/."""
    root = tmp_path_factory.mktemp("sweep")
    output = invoke(
        "eval", "qa", dataset, "--index", root / "index", "--model", tiny_compressor_dir,
        "--k", "2,1", "--vector-dtype", "fp16,int8", "--modes", "none,fused,text",
        "--chunk-tokens", 64, "--overlap", 8, "--max-new-tokens", 4, "--device", "cpu",
        "--out", root / "out",
    )  # fmt: skip
    return root, output


def test_sweep_writes_json_markdown_and_plots(sweep, dataset):
    root, output = sweep
    out = root / "out"
    names = {p.name for p in out.iterdir()}
    runs = {f"qa-{d}-k{k}.json" for d in ("fp16", "int8") for k in (1, 2)}
    assert names == runs | {"qa.json", "qa.md", "qa-vs-k.png", "qa-vs-dtype.png"}
    assert_png(out / "qa-vs-k.png")
    assert_png(out / "qa-vs-dtype.png")
    # one index per dtype under --index
    assert {p.name for p in (root / "index").iterdir()} == {"fp16", "int8"}
    # the table printed is the one saved, a row per (dtype, k, mode)
    table = (out / "qa.md").read_text()
    assert table in output
    assert "Loading weights" not in output  # transformers' bars are silenced while eval loads models
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()  # and turned back on when the command ends
    assert len([line for line in table.splitlines() if line.startswith(("| fp16 |", "| int8 |"))]) == 2 * (
        2 * 2 * 3
    )  # the scores table and the by-kind table


def test_saved_results_round_trip_and_the_main_file_is_the_first_dtype_at_the_largest_k(sweep, tmp_path):
    out = sweep[0] / "out"
    main = QAResult.load(out / "qa.json")
    assert main == QAResult.load(out / "qa-fp16-k2.json")
    assert (main.k, main.meta["vector_dtype"]) == (2, "fp16")
    main.save(tmp_path / "again.json")
    assert QAResult.load(tmp_path / "again.json") == main
    summary = json.loads((out / "qa.json").read_text())["runs"]
    assert [(r["vector_dtype"], r["k"], r["file"]) for r in summary] == [
        ("fp16", 1, "qa-fp16-k1.json"),
        ("fp16", 2, "qa-fp16-k2.json"),
        ("int8", 1, "qa-int8-k1.json"),
        ("int8", 2, "qa-int8-k2.json"),
    ]


def test_numbers_agree_with_one_another(sweep, dataset):
    out = sweep[0] / "out"
    questions = [json.loads(line) for line in (dataset / "questions.jsonl").read_text().splitlines()]
    n = len(questions)
    results = {(d, k): QAResult.load(out / f"qa-{d}-k{k}.json") for d in ("fp16", "int8") for k in (1, 2)}
    for (_, k), result in results.items():
        assert 0.0 <= result.recall_at_k <= 1.0
        assert result.meta["index"]["documents"] == 4 and result.meta["questions"] == n
        for mode, scores in result.scores.items():
            rows = result.predictions[mode]
            assert scores["n"] == len(rows) == n and [r["id"] for r in rows] == [q["id"] for q in questions]
            for key in ("em", "f1", "contains"):
                assert scores[key] == pytest.approx(sum(r[key] for r in rows) / n)
                assert 0.0 <= scores[key] <= 1.0
            assert scores["seconds_per_question"] > 0
            # the kinds partition the questions: counts and weighted scores add up to the mode's
            by_kind = result.scores_by_kind[mode]
            assert sum(s["n"] for s in by_kind.values()) == n
            for key in ("em", "f1", "contains"):
                assert sum(s[key] * s["n"] for s in by_kind.values()) / n == pytest.approx(scores[key])
            if mode == "none":
                assert scores["recall_at_k"] is None and all(r["sources"] == [] for r in rows)
            else:  # every retrieving mode sees the search's top k: chunk-level recall is the search's
                assert scores["recall_at_k"] == pytest.approx(result.recall_at_k)
                assert all(1 <= len(r["sources"]) <= k for r in rows)
                gold = {q["id"]: set(q["doc_ids"]) for q in questions}
                assert [r["hit"] for r in rows] == [
                    float(bool(gold[r["id"]] & set(r["sources"]))) for r in rows
                ]
        ranks = result.meta["gold_rank"]
        assert result.recall_at_k == pytest.approx(sum(r is not None and r <= k for r in ranks.values()) / n)
    for dtype in ("fp16", "int8"):  # more chunks retrieved never find fewer gold documents
        assert results[dtype, 1].recall_at_k <= results[dtype, 2].recall_at_k
    # mode none reads no index: answered once and reported in every run
    assert len({json.dumps(r.predictions["none"]) for r in results.values()}) == 1


def test_a_second_run_reuses_the_index_and_reads_kinds_from_the_data(sweep, dataset, tiny_compressor_dir):
    root = sweep[0]
    questions = [json.loads(line) for line in (dataset / "questions.jsonl").read_text().splitlines()]
    labelled = root / "labelled.jsonl"
    labelled.write_text(
        "".join(json.dumps(q | {"kind": f"kind{i % 2}"}) + "\n" for i, q in enumerate(questions))
    )
    invoke(
        "eval", "qa", dataset / "corpus", labelled, "--index", root / "index" / "int8",
        "--model", tiny_compressor_dir, "--vector-dtype", "int8", "--k", 1, "--modes", "fused",
        "--chunk-tokens", 64, "--overlap", 8, "--max-new-tokens", 4, "--device", "cpu",
        "--out", root / "again.json",
    )  # fmt: skip
    result = QAResult.load(root / "again.json")
    assert result.meta["index"]["chunks_compressed"] == 0  # nothing changed: nothing recompressed
    assert result.meta["kind_source"] == "data"
    assert {kind: s["n"] for kind, s in result.scores_by_kind["fused"].items()} == {
        "kind0": (len(questions) + 1) // 2,
        "kind1": len(questions) // 2,
    }
    assert "EM by answer kind (kinds from the data's `kind` field)" in (root / "again.md").read_text()
    # the same index, question and k: the same retrieval as in the sweep
    before = QAResult.load(root / "out" / "qa-int8-k1.json")
    assert [r["sources"] for r in result.predictions["fused"]] == [
        r["sources"] for r in before.predictions["fused"]
    ]


def test_compare_plots_two_runs_question_by_question(sweep):
    out = sweep[0] / "out"
    plot = sweep[0] / "compare.png"
    output = invoke("eval", "compare", out / "qa-fp16-k1.json", out / "qa-int8-k2.json", "--mode", "text",
                    "--plot", plot)  # fmt: skip
    assert "shared questions, text mode" in output and f"saved {plot}" in output
    assert_png(plot)
    (sweep[0] / "ppl.json").write_text('{"rows": []}')
    message = refused("eval", "compare", sweep[0] / "ppl.json", sweep[0] / "ppl.json", "--plot", plot)
    assert "--plot draws QA comparisons only" in message


def test_bad_input_is_one_line_naming_what_to_fix(tmp_path, dataset, tiny_compressor_dir):
    assert "--k '0,2': every k must be at least 1" in refused("eval", "qa", dataset, "--k", "0,2")
    assert "--k 'five'" in refused("eval", "qa", dataset, "--k", "five")
    assert "--vector-dtype: 'fp4' is not one of" in refused("eval", "qa", dataset, "--vector-dtype", "fp4")
    assert "no corpus/ folder" in refused("eval", "qa", tmp_path)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(
        json.dumps({"id": "x", "question": "Who?", "answers": ["Ann"], "doc_ids": ["nowhere"]}) + "\n"
    )
    message = refused(
        "eval", "qa", dataset / "corpus", wrong, "--index", tmp_path / "index", "--model", tiny_compressor_dir,
        "--chunk-tokens", 64, "--overlap", 8, "--device", "cpu",
    )  # fmt: skip
    assert f"{wrong}: question 'x' names doc_id 'nowhere', which is not a document of" in message
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": 1, "question": "Who?"}\n')
    assert f"{broken}:1: missing key 'answers'" in refused("eval", "qa", dataset / "corpus", broken)


@pytest.mark.e2e
def test_default_model_answers_through_the_index_and_fused_beats_none(tmp_path):
    """The embedded default on 6 invented entities: without retrieval it cannot know them."""
    data = write(generate("test", 6, seed=11), tmp_path / "set")
    invoke(
        "eval", "qa", data, "--index", tmp_path / "index", "--k", 2, "--modes", "none,fused",
        "--max-new-tokens", 12, "--device", "cpu", "--out", tmp_path / "qa.json",
    )  # fmt: skip
    result = QAResult.load(tmp_path / "qa.json")
    n = result.scores["fused"]["n"]
    assert n >= 8 and result.recall_at_k >= 0.8
    assert result.scores["fused"]["em"] >= 0.5, result.predictions["fused"]
    assert result.scores["fused"]["em"] >= result.scores["none"]["em"] + 0.3, result.predictions["none"]


def test_an_index_of_other_settings_is_refused_when_named_and_rebuilt_when_ours(
    tmp_path, dataset, tiny_compressor_dir, monkeypatch
):
    from ragcompress.eval import index_qa

    def run(*extra):
        return (
            "eval", "qa", dataset, "--model", tiny_compressor_dir, "--modes", "fused", "--limit", 2,
            "--overlap", 8, "--max-new-tokens", 2, "--device", "cpu", *extra,
        )  # fmt: skip

    named = tmp_path / "named"
    invoke(*run("--index", named, "--chunk-tokens", 64))
    message = refused(*run("--index", named, "--chunk-tokens", 48))
    assert "pass --rebuild to start" in message and str(named) in message
    invoke(*run("--index", named, "--chunk-tokens", 48, "--rebuild", "--out", tmp_path / "named.json"))
    assert QAResult.load(tmp_path / "named.json").meta["chunk_tokens"] == 48
    # Without --index the folder is ours (a cache per corpus and settings): other settings start it over.
    monkeypatch.setattr(index_qa, "default_index_root", lambda corpus, settings: tmp_path / "cache")
    invoke(*run("--chunk-tokens", 64))
    invoke(*run("--chunk-tokens", 48, "--out", tmp_path / "ours.json"))
    meta = QAResult.load(tmp_path / "ours.json").meta
    assert meta["index"]["dir"] == str(tmp_path / "cache" / "fp16") and meta["index"]["chunks_compressed"] > 0


def test_the_cards_evaluation_answers_through_an_index(tmp_path, tiny_compressor_dir, tiny_embedder_dir):
    """scripts/train_default.py eval: the QA table comes from index + Retriever, as `eval qa` makes it."""
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_default", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    work = tmp_path / "work"
    args = argparse.Namespace(
        work=work, corpus=tmp_path / "no-corpus", base=str(tiny_compressor_dir), models=["base"],
        tables=["qa"], qa_limit=6, embedder=str(tiny_embedder_dir),
    )  # fmt: skip
    for _ in range(2):  # a second evaluation starts the label's index over (its adapter may have changed)
        script.run_eval(args)
        result = QAResult.load(work / "eval" / "qa-base.json")
        assert list(result.scores) == script.QA_MODES and result.k == 5
        assert all(result.scores[m]["n"] == 6 for m in script.QA_MODES)
        meta = result.meta
        assert meta["path"] == "index" and meta["vector_dtype"] == "fp16" and meta["chunk_tokens"] == 512
        assert meta["index"]["dir"] == str(work / "eval" / "index-base") and meta["index"]["documents"] == 300
        assert meta["index"]["chunks_compressed"] == meta["index"]["chunks"]
        assert (work / "eval" / "qa-base.md").is_file()


@pytest.mark.parametrize(
    ("generated", "answers", "expected"),
    [
        ("It was founded in 1623.", ["1623"], 1.0),
        ("The Osla River", ["osla river"], 1.0),
        ("12,400 people", ["12400"], 1.0),
        ("16230", ["1623"], 0.0),  # whole words only
        ("Tomas Varrow", ["Tomas Varro"], 0.0),
        ("", ["1623"], 0.0),
    ],
)
def test_containment_is_whole_normalised_words(generated, answers, expected):
    from ragcompress.eval.qa_metrics import contains_answer

    assert contains_answer(generated, answers) == expected


def test_modes_and_ks_parse_with_extractive_variants():
    from ragcompress.eval.index_qa import QAEvalError, parse_ks, parse_modes

    assert parse_modes("none, text,fused,replug", extractive=True) == [
        "none",
        "text-extractive",
        "fused-extractive",
        "replug",
    ]
    assert parse_modes("fused,fused-extractive,fused") == ["fused", "fused-extractive"]
    assert parse_ks("5,1,3,3") == [1, 3, 5]
    with pytest.raises(QAEvalError, match="--modes: 'summary' is not one of"):
        parse_modes("fused,summary")
