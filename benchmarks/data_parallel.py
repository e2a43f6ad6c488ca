"""Data-parallel training throughput: the trainer on 1 GPU vs N GPUs of one host (same per-GPU batch).

Runs ``train()`` itself (LoRA r = 16, κ = 50, 2 substeps × 2 segments × 512 tokens, random breakpoints,
bf16 autocast, AdamW, gradients averaged over the ranks once per step) on a random-weight model of
SmolLM2-135M's shape (benchmarks/smollm2_135m_config.json) and random token rows, so nothing is
downloaded. Each world size is its own ``torchrun`` job; the result is the median step time after the
first ``--skip`` steps and the text tokens per second of the whole global batch.

    python benchmarks/data_parallel.py --out benchmarks/results/data_parallel.json
    python benchmarks/data_parallel.py --worlds 1 2 --layers 2 --steps 4 --skip 1 --batch-size 1   # CPU check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
ROOT = HERE.parent
EOS = 2


def tokenizer():
    """A word-level tokenizer: the rows are token ids already; packing only needs its EOS id."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": EOS, "x": 3}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>")),
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
    )


def worker(config_path: Path, layers: int | None, dtype: str | None = None) -> None:
    """One rank of a torchrun job: build the random model (bf16 on a GPU unless ``dtype``) and train."""
    import torch

    sys.path.insert(0, str(HERE))
    from train_throughput import model_config

    from ragcompress.modeling import AutoCompressor
    from ragcompress.training import TrainConfig, train

    cfg = TrainConfig(**json.loads(config_path.read_text()))
    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    model = AutoCompressor.from_config(model_config(layers), summary_length=cfg.summary_length)
    dtype = dtype or ("bfloat16" if cuda else "float32")
    model = model.to(getattr(torch, dtype))
    train(cfg, model=model, tokenizer=tokenizer())


def run_config(args, data: Path, out: Path) -> dict:
    """The trainer config of every world size (the default model's stage-1 shape, LoRA)."""
    return dict(
        model="random-smollm2-shape",
        summary_length=50,
        segment_length=512,
        segments_per_substep=2,
        training_substeps=2,
        randomize_segments=True,
        min_segment_length=256,
        lora=True,
        lora_r=16,
        lora_alpha=32,
        batch_size=args.batch_size,
        max_steps=args.steps,
        warmup_steps=1,
        learning_rate=1e-4,
        train_data=[str(data)],
        valid_data=[],
        eval_every=0,
        save_every=0,
        log_every=1,
        progress=False,
        tensorboard=False,
        output_dir=str(out),
    )


def sequence_tokens(args) -> int:
    """Tokens of one packed row, as the trainer derives them from the config."""
    from ragcompress.training import TrainConfig

    return TrainConfig(**run_config(args, Path("-"), Path("-"))).sequence_length


def run_world(world: int, args, data: Path, work: Path) -> dict:
    out = work / f"world{world}"
    cfg = run_config(args, data, out)
    config_path = work / f"world{world}.json"
    config_path.write_text(json.dumps(cfg))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}"]
    command += [__file__, "--worker", str(config_path)] + (
        ["--layers", str(args.layers)] if args.layers else []
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"world {world}: the torchrun job failed:\n{done.stderr[-3000:]}")
    rows = metric_rows(out)
    steps = [r["step_seconds"] for r in rows if "step_seconds" in r][args.skip :]
    seconds = statistics.median(steps)
    tokens = args.batch_size * world * sequence_tokens(args)  # text tokens of one global step
    return {
        "world": world,
        "per_gpu_batch": args.batch_size,
        "global_batch": args.batch_size * world,
        "steps_timed": len(steps),
        "median_step_seconds": seconds,
        "tokens_per_second": tokens / seconds,
        "job_seconds": time.perf_counter() - began,
        "final_loss": rows[-1].get("loss"),
    }


def metric_rows(out: Path) -> list[dict]:
    """The trainer's metrics.jsonl rows of a run whose output_dir was ``out``."""
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def write_random_rows(path: Path, count: int, length: int) -> None:
    """``count`` rows of ``length`` random token ids (one document per packed row: packing appends EOS)."""
    rng = np.random.default_rng(0)
    with open(path, "w") as handle:
        for _ in range(count):
            handle.write(json.dumps({"input_ids": rng.integers(3, 49152, length).tolist()}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, nargs="*", default=None, help="default: 1 and every GPU")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences of 2,048 tokens per GPU")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--skip", type=int, default=5, help="first steps left out of the median")
    parser.add_argument("--layers", type=int, default=None, help="fewer layers for a quick CPU check")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.layers)
        return

    import torch

    gpus = torch.cuda.device_count()
    worlds = args.worlds or sorted({1, max(gpus, 1)})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "rows.jsonl"
        write_random_rows(data, max(worlds) * args.batch_size * (args.steps + 1), sequence_tokens(args) - 1)
        results = [run_world(world, args, data, work) for world in worlds]
    base = results[0]["tokens_per_second"]
    for row in results:
        row["speedup"] = row["tokens_per_second"] / base
        print(
            f"world {row['world']}: {row['median_step_seconds']:.3f} s/step, "
            f"{row['tokens_per_second']:,.0f} tokens/s, ×{row['speedup']:.2f}",
            flush=True,
        )
    device = torch.cuda.get_device_name(0) if gpus else platform.processor() or platform.machine()
    report = {
        "device": f"{gpus} × {device}" if gpus else device,
        "torch": torch.__version__,
        "layers": args.layers or 30,
        "command": " ".join(["python", "benchmarks/data_parallel.py"] + sys.argv[1:]),
        "results": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
