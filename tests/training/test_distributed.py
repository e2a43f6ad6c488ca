"""Data-parallel training: 2 gloo processes on CPU equal one process with the same global batch."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import tiny_train_config, write_recall_data
from safetensors.torch import load_file
from tiny import tiny_model, tiny_tokenizer


def _config(train_path, valid_path, **overrides) -> dict:
    """The trainer tests' tiny config (``helpers.tiny_train_config``) cut to three steps, as the JSON that
    ``ragcompress train -c`` reads: what both sides of every comparison share."""
    short = dict(max_steps=3, warmup_steps=1, learning_rate=1e-3, attn_implementation="eager")
    return tiny_train_config(train_path, valid_path, "unset", **{**short, **overrides}).to_dict()


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
    final = cfg["output_dir"] + "/final/"
    return load_file(final + ("adapter_model.safetensors" if cfg.get("lora") else "model.safetensors"))


def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    model_dir = tmp_path / "tiny"
    tiny_model("llama", summary_length=2).save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    train_path, valid_path = write_recall_data(tmp_path, n_train=64, n_valid=8)
    common = _config(train_path, valid_path, model=str(model_dir), summary_length=2, segment_length=16)
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


def _text_rows(path, n: int = 160):
    words = "the river mill bridge otter bread oven loaf moon ring storm planet north south".split()
    rng = np.random.default_rng(1)
    with open(path, "w") as handle:
        for i in range(n):
            body = " ".join(rng.choice(words, 40))
            handle.write(json.dumps({"id": i, "text": f"Note {i}: {body}."}) + "\n")
    return str(path)


@pytest.mark.parametrize("variant", ["stage2", "qa-only", "no-stop-gradient"])
def test_two_gloo_ranks_match_one_process_in_stage_two_and_without_stop_gradient(tmp_path, variant):
    """The paths a data-parallel stage 2 takes: LoRA, LM substeps plus the fused-QA loss
    (passages compressed and the answer read in one step), a rank whose QA share is all text mode (its
    summary weights get no gradient), and one backward over every substep (no stop-gradient)."""
    from ragcompress.data.qa_dataset import write
    from ragcompress.training.qa_data import QAExamples
    from ragcompress_tools.synthqa import generate
    from tests.indexing.pipeline_helpers import save_tiny_compressor

    model_dir = save_tiny_compressor(tmp_path / "tiny")
    train_path = _text_rows(tmp_path / "train.jsonl")
    qa_dir = str(write(generate("train", 12, seed=0), tmp_path / "synthqa"))
    common = _config(
        train_path,
        "unused",
        model=str(model_dir),
        summary_length=4,
        segment_length=32,
        valid_data=[],
        qa_data=[qa_dir],
        qa_k=2,
        qa_passage_tokens=48,
        qa_text_fraction=0.5,
        lora=True,
        lora_r=4,
        lora_dropout=0.0,  # a rank's dropout masks differ from its rows' masks in one process
    )
    if variant == "qa-only":
        common.update(train_data=[], lora=False)
        qa = QAExamples([qa_dir], 2, 0, 0.5)
        shares = [qa.batch(step, 0, 1, 2, 2, rank) for step in range(3) for rank in range(2)]
        assert any(all(e["text_mode"] for e in share) for share in shares)  # the case under test occurs
    elif variant == "no-stop-gradient":
        common.update(qa_data=[], training_substeps=2, stop_gradient=False)

    single = _run(
        {**common, "batch_size": 4, "qa_batch_size": 4, "output_dir": str(tmp_path / "single")},
        tmp_path / "single.json",
        1,
    )
    double = _run(
        {**common, "batch_size": 2, "qa_batch_size": 2, "output_dir": str(tmp_path / "ddp")},
        tmp_path / "ddp.json",
        2,
    )
    assert single.keys() == double.keys() and len(single) > 2
    for name in single:
        torch.testing.assert_close(double[name], single[name], atol=2e-5, rtol=1e-4)
    meta = [
        json.loads((tmp_path / run / "final" / "ragcompress.json").read_text()) for run in ("single", "ddp")
    ]
    assert "data_parallel" not in meta[0] and meta[1]["data_parallel"] == 2
    first = json.loads((tmp_path / "single" / "metrics.jsonl").read_text().splitlines()[0])
    logged = json.loads((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()[0])
    for key in ("loss", "qa_loss"):  # rank 0 logs the losses of the whole global batch
        if key in first:
            assert logged[key] == pytest.approx(first[key], rel=1e-4), key


def test_data_parallel_benchmark_runs_the_trainer_on_two_ranks(tmp_path):
    """benchmarks/data_parallel.py (its GPU numbers are in benchmarks/README.md) runs on CPUs too."""
    out = tmp_path / "dp.json"
    command = [sys.executable, "benchmarks/data_parallel.py", "--worlds", "2", "--layers", "1"]
    command += ["--steps", "2", "--skip", "0", "--batch-size", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = json.loads(out.read_text())["results"]
    assert row["world"] == 2 and row["global_batch"] == 2 and row["steps_timed"] == 2
    assert row["tokens_per_second"] > 0 and 9 < row["final_loss"] < 12  # ≈ ln(49152) for random weights


def test_gradient_averaging_fills_every_bucket_and_missing_gradients(tmp_path):
    """The bucketed all-reduce puts every value back where it came from, across bucket borders (a
    one-process group, told it has two ranks, must return each gradient halved); a weight that no rank
    has a gradient for keeps none, as in one process."""
    import torch.distributed as dist

    from ragcompress.training.distributed import Dist, average_gradients

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(shape)) for shape in ((3, 4), (5,), (2, 2, 2), (7, 1), (4,))]
        for param in params[:3] + params[4:]:
            param.grad = torch.randn_like(param)
        before = [None if p.grad is None else p.grad.clone() for p in params]
        average_gradients(params, Dist(0, 2, torch.device("cpu")), bucket=10)  # borders inside the list
        for param, grad in zip(params, before):
            if grad is None:
                assert param.grad is None
            else:
                torch.testing.assert_close(param.grad, grad / 2, atol=0, rtol=0)
    finally:
        dist.destroy_process_group()


RANKS_SCRIPT = """
import sys, torch, torch.distributed as dist
from safetensors.torch import save_file
from ragcompress.training.distributed import Dist, average_gradients
dist.init_process_group("gloo")
rank = dist.get_rank()
params = [torch.nn.Parameter(torch.zeros(3)) for _ in range(4)]
params[0].grad = torch.full((3,), 1.0 + rank)  # both ranks: averaged
if rank == 0:
    params[1].grad = torch.full((3,), 4.0)  # rank 0 only: the other rank counts zeros
if rank == 1:
    params[2].grad = torch.full((3,), 6.0)  # rank 1 only
average_gradients(params, Dist(rank, 2, torch.device("cpu")), bucket=4)  # params[3]: no rank
grads = {f"p{i}": p.grad for i, p in enumerate(params) if p.grad is not None}
save_file(grads, f"{sys.argv[1]}/rank{rank}.safetensors")
dist.destroy_process_group()
"""


def test_gradient_averaging_over_two_ranks_with_gradients_on_some(tmp_path):
    """Two gloo ranks: a weight one rank lacks a gradient for averages with zeros there; a weight neither
    rank reached keeps no gradient on both (AdamW then skips it, as one process would)."""
    script = tmp_path / "ranks.py"
    script.write_text(RANKS_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        command + [str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        grads = load_file(str(tmp_path / f"rank{rank}.safetensors"))
        assert sorted(grads) == ["p0", "p1", "p2"]
        for name, value in (("p0", 1.5), ("p1", 2.0), ("p2", 3.0)):
            torch.testing.assert_close(grads[name], torch.full((3,), value), atol=0, rtol=0)
