"""`ragcompress eval ppl` on CPU with a tiny model: conditions, shared targets, gain kept, per-window NLLs,
the paired comparison of two results, CLI."""

import json
import math

import numpy as np
import pytest
import torch
from tiny import random_ids, tiny_model, tiny_tokenizer
from typer.testing import CliRunner

from ragcompress.cli import app
from ragcompress.eval.ppl import (
    PPLResult,
    PPLRow,
    compare,
    document_windows,
    evaluate_ppl,
    labelled_windows,
    source_name,
)


def _manual_nll(model, window, S, condition, j):
    final = window[:, -S:]
    if condition == "none":
        logits = model(input_ids=final).logits
    elif condition == "compressed":
        logits = model(input_ids=window[:, -(j + 1) * S :], segment_lengths=[S] * (j + 1)).logits[:, -S:]
    else:
        logits = model(input_ids=window[:, -(j + 1) * S :]).logits[:, -S:]
    logp = torch.log_softmax(logits[:, :-1].float(), -1)
    return -logp.gather(-1, final[:, 1:, None]).mean().item()


def test_conditions_match_manual_computation_and_gain_is_derived_from_them():
    model = tiny_model("llama", summary_length=3)
    S, n = 8, 2
    windows = random_ids(5, S * (n + 1)).numpy()
    result = evaluate_ppl(model, windows, S, n, batch_size=2)
    batch = torch.from_numpy(windows)
    assert result.row("none").nll == pytest.approx(_manual_nll(model, batch, S, "none", 0), rel=1e-5)
    for j in (1, 2):
        for condition in ("compressed", "full"):
            assert result.row(condition, j).nll == pytest.approx(
                _manual_nll(model, batch, S, condition, j), rel=1e-5
            )
            assert result.row(condition, j).tokens == 5 * (S - 1)
        none, comp, full = (
            result.row("none").ppl,
            result.row("compressed", j).ppl,
            result.row("full", j).ppl,
        )
        expected = (none - comp) / (none - full) if none > full else float("nan")
        assert (math.isnan(expected) and math.isnan(result.gain_kept[j])) or result.gain_kept[
            j
        ] == pytest.approx(expected)
    assert "compressed" in result.table()
    # every row keeps each window's mean NLL; their mean is the row's NLL (windows score equal token counts)
    for row in result.rows:
        assert len(row.window_nll) == 5 and np.mean(row.window_nll) == pytest.approx(row.nll, rel=1e-6)
    assert result.row("compressed", 2).window_nll[3] == pytest.approx(
        _manual_nll(model, batch[3:4], S, "compressed", 2), rel=1e-5
    )
    assert len(result.windows_sha256) == 64


def _result(none, compressed, full, digest="d" * 64) -> PPLResult:
    """A one-segment PPL result with the given per-window NLLs."""
    rows = [
        PPLRow(condition, j, float(np.mean(x)), math.exp(np.mean(x)), 7 * len(x), list(x))
        for condition, j, x in (("none", 0, none), ("compressed", 1, compressed), ("full", 1, full))
    ]
    return PPLResult(
        segment_length=8, context_segments=1, windows=len(none), rows=rows, windows_sha256=digest
    )


def test_compare_is_a_paired_bootstrap_over_shared_windows(tmp_path):
    rng = np.random.default_rng(0)
    none = 3.0 + rng.normal(0, 0.3, 40)  # windows differ a lot; the two models differ a little
    full = none - 0.20 + rng.normal(0, 0.02, 40)
    a = _result(none, none - 0.06 + rng.normal(0, 0.02, 40), full)
    b = _result(none, np.asarray(a.row("compressed", 1).window_nll) - 0.01, full)

    same = compare(a, a, samples=500)
    assert same["gain_kept_diff"] == 0 and same["gain_kept_diff_ci95"] == [0.0, 0.0]
    assert same["share_b_better"] == 0 and same["windows_b_saves_more"] == 0

    better = compare(a, b, samples=2000)
    assert better["nats_saved_diff"] == pytest.approx(0.01)
    assert better["nats_saved_diff_ci95"] == pytest.approx([0.01, 0.01])
    assert better["windows_b_saves_more"] == 40 and better["share_b_better"] == 1.0

    def kept(r):
        none, comp, full = (
            math.exp(r.row(c, j).nll) for c, j in (("none", 0), ("compressed", 1), ("full", 1))
        )
        return (none - comp) / (none - full)

    assert better["gain_kept_a"] == pytest.approx(kept(a)) and better["gain_kept_b"] == pytest.approx(kept(b))
    low, high = better["gain_kept_diff_ci95"]
    assert 0 < low < better["gain_kept_diff"] < high  # pairing: the shared window noise cancels

    # the same 0.01 as noise of either sign: the interval must straddle zero
    noisy = _result(none, np.asarray(a.row("compressed", 1).window_nll) + rng.choice([-0.01, 0.01], 40), full)
    low, high = compare(a, noisy, samples=2000)["gain_kept_diff_ci95"]
    assert low < 0 < high

    with pytest.raises(ValueError, match="different windows"):
        compare(a, _result(none, none, full, digest="e" * 64))
    with pytest.raises(ValueError, match="context_segments=2"):
        compare(a, b, context_segments=2)


def test_compare_is_repeated_within_each_source(tmp_path):
    rng = np.random.default_rng(1)
    none = 3.0 + rng.normal(0, 0.3, 30)
    full = none - 0.2
    comp_a = none - 0.06 + rng.normal(0, 0.01, 30)
    comp_b = comp_a - np.r_[np.full(10, 0.02), np.zeros(20)]  # B compresses better on source x only
    sources = ["x"] * 10 + ["y"] * 20
    a, b = _result(none, comp_a, full), _result(none, comp_b, full)
    a.window_sources = b.window_sources = sources

    result = compare(a, b, samples=500)
    x, y = result["by_source"]["x"], result["by_source"]["y"]
    alone = compare(
        _result(none[:10], comp_a[:10], full[:10]), _result(none[:10], comp_b[:10], full[:10]), samples=500
    )
    assert x["windows"] == 10 and x["gain_kept_diff"] == pytest.approx(alone["gain_kept_diff"])
    assert x["gain_kept_diff_ci95"] == pytest.approx(alone["gain_kept_diff_ci95"])
    assert x["nats_saved_diff"] == pytest.approx(0.02) and y["gain_kept_diff"] == pytest.approx(0)
    assert a.subset("x").gain_kept[1] == pytest.approx(a.gain_kept_by_source()["x"][1])

    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    shown = CliRunner().invoke(app, ["eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert shown.exit_code == 0, shown.output
    assert "  x (10 windows): gain kept A" in shown.output and "  y (20 windows)" in shown.output
    b.window_sources = ["y"] * 10 + ["x"] * 20  # other windows under those names: no per-source comparison
    assert "by_source" not in compare(a, b, samples=100)


def test_saved_results_load_back_and_old_ones_are_refused_for_comparison(tmp_path):
    model = tiny_model("llama", summary_length=3)
    result = evaluate_ppl(model, random_ids(6, 8 * 3).numpy(), 8, 2, batch_size=4)
    result.save(tmp_path / "a.json")
    loaded = PPLResult.load(tmp_path / "a.json")
    assert json.dumps(loaded.to_dict()) == json.dumps(result.to_dict())  # rows, window NLLs, digest
    assert compare(result, loaded, samples=100)["nats_saved_diff"] == 0
    other = evaluate_ppl(model, random_ids(6, 8 * 3, seed=1).numpy(), 8, 2, batch_size=4)
    assert other.windows_sha256 != result.windows_sha256
    old = json.loads((tmp_path / "a.json").read_text())  # as saved before per-window NLLs existed
    for row in old["rows"]:
        del row["window_nll"]
    del old["windows_sha256"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert PPLResult.load(tmp_path / "old.json").row("none").nll == result.row("none").nll
    with pytest.raises(ValueError, match="a: no per-window NLLs"):
        compare(PPLResult.load(tmp_path / "old.json"), result)
    with pytest.raises(ValueError, match="not a saved PPL result"):
        PPLResult.load(tmp_path / "nope.json")


def test_windows_stay_inside_documents(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(
        json.dumps({"input_ids": list(range(3, 40))}) + "\n" + json.dumps({"input_ids": [5] * 10}) + "\n"
    )
    windows = document_windows([str(data)], tiny_tokenizer(), 12, 10)
    assert windows.shape == (3, 12) and windows[0, 0] == 3  # 37 tokens → 3 windows; the 10-token doc → none
    with pytest.raises(ValueError, match="no document has 50 tokens"):
        document_windows([str(data)], tiny_tokenizer(), 50, 10)


def test_each_window_knows_its_source_and_the_gain_is_kept_per_source(tmp_path):
    corpus = tmp_path / "corpus"
    for source, docs in (("austen", [range(3, 40)]), ("linux-docs", [range(50, 75), [7] * 5])):
        (corpus / source).mkdir(parents=True)
        lines = [json.dumps({"input_ids": list(doc)}) for doc in docs]
        (corpus / source / "test.jsonl").write_text("\n".join(lines) + "\n")
    paths = [str(corpus / s / "test.jsonl") for s in ("austen", "linux-docs")]
    windows, sources = labelled_windows(paths, tiny_tokenizer(), 12, 10)
    assert sources == ["austen"] * 3 + ["linux-docs"] * 2  # 37 and 25 tokens; the 5-token document gives none
    assert np.array_equal(windows, document_windows(paths, tiny_tokenizer(), 12, 10))
    assert labelled_windows(paths, tiny_tokenizer(), 12, 10, per_path=1)[1] == ["austen", "linux-docs"]
    (corpus / "austen" / "validation.jsonl").write_text(json.dumps({"input_ids": list(range(3, 20))}) + "\n")
    twins = [paths[0], str(corpus / "austen" / "validation.jsonl")]  # one source, two splits: full paths
    assert labelled_windows(twins, tiny_tokenizer(), 12, 10, per_path=1)[1] == twins
    assert [source_name(s) for s in ("data/corpus/gcide/validation.jsonl", "notes/", "a/b.jsonl")] == [
        "gcide",
        "notes",
        "b.jsonl",
    ]

    # the gain kept over one source's windows is the gain kept of a result holding only those windows
    model = tiny_model("llama", summary_length=3)
    S = 4
    # one window per batch: a window's numbers must not depend on which windows share its batch (BLAS
    # blocking differs with the batch, and the gain kept, a ratio of small differences, magnifies that)
    result = evaluate_ppl(model, windows, S, 2, batch_size=1, sources=sources)
    by_source = result.gain_kept_by_source()
    alone = evaluate_ppl(model, windows[3:], S, 2, batch_size=1)
    for j in (1, 2):
        assert by_source["linux-docs"][j] == pytest.approx(alone.gain_kept[j], rel=1e-5, nan_ok=True)
    assert "gain kept by source" in result.table() and "linux-docs" in result.table()
    result.save(tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["window_sources"] == sources and set(saved["gain_kept_by_source"]) == {
        "austen",
        "linux-docs",
    }
    loaded = PPLResult.load(tmp_path / "r.json").gain_kept_by_source()
    for source, kept in by_source.items():
        assert loaded[source] == pytest.approx(kept, nan_ok=True)
    assert evaluate_ppl(model, windows, S, 2).gain_kept_by_source() == {}  # no sources given: none reported
    with pytest.raises(ValueError, match="2 sources for 5 windows"):
        evaluate_ppl(model, windows, S, 2, sources=sources[:2])


def test_cli_train_then_eval_ppl_on_cpu(tmp_path):
    model_dir = tmp_path / "tiny"
    tiny_model("llama", summary_length=2).save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    rng = np.random.default_rng(0)
    data = tmp_path / "train.jsonl"
    data.write_text(
        "".join(json.dumps({"input_ids": rng.integers(3, 90, 63).tolist()}) + "\n" for _ in range(40))
    )
    runner = CliRunner()
    trained = runner.invoke(
        app,
        [
            "train",
            f"model={model_dir}",
            "lora=false",
            "summary_length=2",
            "segment_length=8",
            "segments_per_substep=2",
            "training_substeps=2",
            f"train_data=[{data}]",
            "max_steps=2",
            "batch_size=2",
            "eval_every=0",
            "save_every=0",
            "progress=false",
            f"output_dir={tmp_path / 'run'}",
            "tensorboard=false",
        ],
    )
    assert trained.exit_code == 0, trained.output
    assert "training finished" in trained.output
    final = tmp_path / "run" / "final"
    out = tmp_path / "ppl.json"
    evaluated = runner.invoke(
        app,
        [
            "eval",
            "ppl",
            str(data),
            "--model",
            str(final),
            "--segment-length",
            "8",
            "--context-segments",
            "2",
            "--max-windows",
            "6",
            "--out",
            str(out),
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    saved = json.loads(out.read_text())
    assert saved["windows"] == 6 and len(saved["rows"]) == 5 and set(saved["gain_kept"]) == {"1", "2"}
    compared = runner.invoke(app, ["eval", "compare", str(out), str(out), "--samples", "200"])
    assert compared.exit_code == 0, compared.output
    assert "6 shared windows" in compared.output and "B - A: +0.0000" in compared.output
    bad = runner.invoke(app, ["eval", "compare", str(out), str(data)])
    assert bad.exit_code == 2 and f"{data}: not a saved PPL result" in bad.output
    missing = runner.invoke(app, ["eval", "ppl", str(tmp_path / "nope"), "--model", str(final)])
    assert missing.exit_code == 2 and "no such file or directory" in missing.output
