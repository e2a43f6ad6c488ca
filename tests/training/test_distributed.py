"""Data-parallel training: 2 gloo processes on CPU equal one process with the same global batch."""

import json
import os
import subprocess
import sys

import torch
from helpers import write_recall_data
from safetensors.torch import load_file
from tiny import tiny_model, tiny_tokenizer


def _run(cfg: dict, path, nproc: int):
    path.write_text(json.dumps(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    command = (
        launcher + ["-m", "ragcompress.cli", "train", "-c", str(path)]
        if nproc > 1
        else [sys.executable, "-m", "ragcompress.cli", "train", "-c", str(path)]
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return load_file(str(cfg["output_dir"] + "/final/model.safetensors"))


def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    model_dir = tmp_path / "tiny"
    tiny_model("llama", summary_length=2).save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    train_path, valid_path = write_recall_data(tmp_path, n_train=64, n_valid=8)
    common = dict(
        model=str(model_dir),
        lora=False,
        summary_length=2,
        segment_length=16,
        segments_per_substep=2,
        training_substeps=1,
        randomize_segments=False,
        train_data=[str(train_path)],
        valid_data=[str(valid_path)],
        max_steps=3,
        warmup_steps=1,
        eval_every=0,
        save_every=0,
        progress=False,
        tensorboard=False,
        learning_rate=1e-3,
        attn_implementation="eager",
    )
    single = _run(
        {**common, "batch_size": 4, "output_dir": str(tmp_path / "single")}, tmp_path / "single.json", 1
    )
    double = _run({**common, "batch_size": 2, "output_dir": str(tmp_path / "ddp")}, tmp_path / "ddp.json", 2)
    initial = load_file(str(model_dir / "model.safetensors"))
    assert single.keys() == double.keys()
    for name in single:
        torch.testing.assert_close(double[name], single[name], atol=2e-5, rtol=1e-4)
    # training moved the weights (identically in both runs)
    assert not torch.equal(single["embed_summary.weight"], initial["embed_summary.weight"])
