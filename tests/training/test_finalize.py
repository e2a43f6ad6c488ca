"""scripts/train_default.py: finalize turns a paused stage into the adapter training would write; the QA cache."""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import torch
from helpers import tiny_train_config, write_recall_data
from safetensors.torch import load_file
from tiny import tiny_model, tiny_tokenizer

from ragcompress.training import train

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_default.py"


def _script():
    spec = importlib.util.spec_from_file_location("train_default", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _two_stages(tmp_path, work):
    """A tiny LoRA stage 1 (2 steps), then stage 2 continued from it (4 steps, checkpoints every 2)."""
    base = tmp_path / "base"
    tiny_model("llama", summary_length=2).save_pretrained(base)
    tiny_tokenizer().save_pretrained(base)
    train_path, valid_path = write_recall_data(tmp_path, n_train=100)
    lora = dict(
        model=str(base),
        summary_length=2,
        lora=True,
        lora_r=4,
        lora_targets=("q_proj", "v_proj"),
        batch_size=4,
    )
    first = train(tiny_train_config(train_path, valid_path, work / "stage1", max_steps=2, **lora))
    cfg = tiny_train_config(
        train_path,
        valid_path,
        work / "stage2",
        max_steps=4,
        save_every=2,
        init_adapter=str(first.final_dir),
        **lora,
    )
    return first, train(cfg)


def test_finalize_matches_the_trained_adapter_and_keeps_the_lineage(tmp_path):
    first, trained = _two_stages(tmp_path, tmp_path / "work")
    expected = load_file(str(trained.final_dir / "adapter_model.safetensors"))

    final = tmp_path / "work" / "stage2" / "final"
    final.rename(tmp_path / "trained-final")
    _script().finalize(argparse.Namespace(work=tmp_path / "work", which="stage2"))
    got = load_file(str(final / "adapter_model.safetensors"))
    assert set(got) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, atol=0, rtol=0)
    meta = json.loads((final / "ragcompress.json").read_text())
    assert meta["steps"] == 4 and meta["finalized_from"] == "step-0000004"
    assert meta["parent"]["steps"] == 2 and meta["total_steps"] == 6
    assert meta["config"]["init_adapter"] == str(first.final_dir)  # recorded, though not re-applied
    # the adapter config is written the same way every time (peft keeps its module names in a set)
    written = json.loads((final / "adapter_config.json").read_text())
    assert written["target_modules"] == ["q_proj", "v_proj"]
    assert (final / "adapter_config.json").read_text() == (
        tmp_path / "trained-final" / "adapter_config.json"
    ).read_text()
    assert "data_parallel" not in meta  # one process
    # a checkpoint of a run over two ranks says so in the finalized metadata
    state_path = tmp_path / "work" / "stage2" / "checkpoints" / "step-0000004" / "state.json"
    state = json.loads(state_path.read_text())
    assert state["world"] == 1
    state_path.write_text(json.dumps({**state, "world": 2}))
    shutil.rmtree(final)
    _script().finalize(argparse.Namespace(work=tmp_path / "work", which="stage2"))
    assert json.loads((final / "ragcompress.json").read_text())["data_parallel"] == 2


def test_synthqa_dir_rebuilds_when_the_entity_count_changes(tmp_path):
    script = _script()
    first = script.synthqa_dir(tmp_path, "train", 5, seed=0)
    small = (first / "questions.jsonl").read_text()
    written = (first / "questions.jsonl").stat().st_mtime_ns
    assert script.synthqa_dir(tmp_path, "train", 5, seed=0) == first
    assert (first / "questions.jsonl").stat().st_mtime_ns == written  # reused, not written again
    script.synthqa_dir(tmp_path, "train", 9, seed=0)
    assert len(list((first / "corpus").glob("*.txt"))) == 9  # no stale document of the 5-entity set
    assert len((first / "questions.jsonl").read_text()) > len(small)
    assert json.loads((first / "params.json").read_text()) == {"split": "train", "entities": 9, "seed": 0}


def test_finalize_out_writes_elsewhere_and_leaves_the_stage_alone(tmp_path):
    _, trained = _two_stages(tmp_path, tmp_path / "work")
    trained.final_dir.rename(tmp_path / "trained-final")
    out = tmp_path / "elsewhere" / "final"
    _script().finalize(argparse.Namespace(work=tmp_path / "work", which="stage2", out=out))
    assert not trained.final_dir.exists()  # a stage still training keeps its own final to write
    expected = load_file(str(tmp_path / "trained-final" / "adapter_model.safetensors"))
    got = load_file(str(out / "adapter_model.safetensors"))
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, atol=0, rtol=0)


def _gpu_script(name, stash, out, *args):
    """Run experiments/gpu/<name> as the GPU machine would, with /root/stash replaced by ``stash``."""
    env = {
        **os.environ,
        "S": str(stash),
        "OUT": str(out),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # python3 = this one
    }
    return subprocess.run(
        ["bash", f"experiments/gpu/{name}", *args],
        cwd=SCRIPT.parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_salvage_returns_the_stages_still_training_as_adapters(tmp_path):
    work = tmp_path / "stash" / "work"
    first, trained = _two_stages(tmp_path, work)
    # stage 2 "still training": checkpoints but no final yet; stage 1 done (final present) is skipped
    trained.final_dir.rename(tmp_path / "trained-final")
    (work / "stage2a" / "final").mkdir(parents=True)  # a parked parent adapter has no checkpoints
    out = tmp_path / "out"
    out.mkdir()
    done = _gpu_script("salvage.sh", tmp_path / "stash", out)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["salvage-stage2-step-0000004.tar"]
    assert not trained.final_dir.exists()  # the training's own final is left to the training
    with tarfile.open(out / "salvage-stage2-step-0000004.tar") as tar:
        tar.extractall(tmp_path / "got", filter="data")
    got = tmp_path / "got" / "final"
    expected = load_file(str(tmp_path / "trained-final" / "adapter_model.safetensors"))
    for key, value in load_file(str(got / "adapter_model.safetensors")).items():
        torch.testing.assert_close(value, expected[key], atol=0, rtol=0)
    meta = json.loads((got / "ragcompress.json").read_text())
    assert meta["finalized_from"] == "step-0000004" and meta["parent"]["steps"] == 2


def test_watch_stops_at_once_on_a_fresh_machine(tmp_path):
    done = _gpu_script("watch_v1.sh", tmp_path / "fresh-stash", tmp_path, "600")
    assert done.returncode == 3
    assert "fresh machine" in done.stderr and "run is lost" in done.stderr
