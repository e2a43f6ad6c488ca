"""`ragcompress eval ppl` on CPU with a tiny model: conditions, shared targets, gain kept, CLI."""

import json
import math

import numpy as np
import pytest
import torch
from tiny import random_ids, tiny_model, tiny_tokenizer
from typer.testing import CliRunner

from ragcompress.cli import app
from ragcompress.eval.ppl import document_windows, evaluate_ppl


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


def test_windows_stay_inside_documents(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(
        json.dumps({"input_ids": list(range(3, 40))}) + "\n" + json.dumps({"input_ids": [5] * 10}) + "\n"
    )
    windows = document_windows([str(data)], tiny_tokenizer(), 12, 10)
    assert windows.shape == (3, 12) and windows[0, 0] == 3  # 37 tokens → 3 windows; the 10-token doc → none
    with pytest.raises(ValueError, match="no document has 50 tokens"):
        document_windows([str(data)], tiny_tokenizer(), 50, 10)


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
    missing = runner.invoke(app, ["eval", "ppl", str(tmp_path / "nope"), "--model", str(final)])
    assert missing.exit_code == 2 and "no such file or directory" in missing.output
