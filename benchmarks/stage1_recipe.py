"""The default model's stage-1 recipe in steps/s, on the plain training path and on the fast path.

Runs ``train()`` with configs/default/stage1.yaml as it is (LoRA r = 16, κ = 50, 16 rows of 2,048 tokens,
random segment breakpoints, affine summary readout, a quarter of the rows repeated, AdamW), changing only
what a benchmark must: a random-weight model of SmolLM2-135M's shape (benchmarks/smollm2_135m_config.json),
random token rows, no validation or checkpoints, ``--steps`` steps, and ``fast_path`` off then on. Each
path is its own process (a fresh CUDA context and compile cache). The result is the median step time
after the first ``--skip`` steps (the fast path compiles during its first steps). Every path also
reports its per-step losses and gradient norms and their largest relative difference from the first
path's (same model, rows and segmenting): ``--dtype float32`` makes that a correctness check of the
compiled and graph-replayed paths, where bf16 rounding would blur it.

    python benchmarks/stage1_recipe.py --out benchmarks/results/stage1_recipe-h200.json
    python benchmarks/stage1_recipe.py --dtype float32 --batch-size 4 --steps 8 --skip 2 \
        --paths plain fast-cudagraphs --out benchmarks/results/stage1_recipe-h200-fp32.json
    python benchmarks/stage1_recipe.py --layers 2 --steps 3 --skip 1 --batch-size 2    # CPU check
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

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from data_parallel import metric_rows, worker, write_random_rows  # noqa: E402

RECIPE = ROOT / "configs" / "default" / "stage1.yaml"
PATHS = {
    "plain": {"fast_path": False},
    "fast": {"fast_path": True},
    # the compiled layers as CUDA graphs: random breakpoints make every step a new sequence of shapes
    "fast-cudagraphs": {"fast_path": True, "compile_mode": "reduce-overhead"},
    # ... unless every segment is padded to the longest one the breakpoints can cut (more tokens, one
    # sequence of shapes for every step)
    "fast-cudagraphs-one-shape": {
        "fast_path": True,
        "compile_mode": "reduce-overhead",
        "segment_bucket": "longest",
    },
}


def recipe_config(args, path: str, data: Path, out: Path):
    """configs/default/stage1.yaml with the benchmark's overrides and one path's switches."""
    from ragcompress.training import TrainConfig
    from ragcompress.training.fastpath import longest_segment

    cfg = TrainConfig.load(RECIPE)
    changes = dict(
        model="random-smollm2-shape",
        max_steps=args.steps,
        warmup_steps=1,
        train_data=[str(data)],
        valid_data=[],
        eval_every=0,
        save_every=0,
        log_every=1,
        progress=False,
        tensorboard=False,
        output_dir=str(out),
        **PATHS[path],
    )
    if args.batch_size:
        changes["batch_size"] = args.batch_size
    if changes.get("segment_bucket") == "longest":
        changes["segment_bucket"] = longest_segment(cfg)
    return cfg.override([f"{key}={json.dumps(value)}" for key, value in changes.items()])


def run_path(path: str, args, data: Path, work: Path) -> dict:
    out = work / path
    cfg = recipe_config(args, path, data, out)
    config_path = work / f"{path}.json"
    config_path.write_text(json.dumps(cfg.to_dict()))
    command = [sys.executable, __file__, "--worker", str(config_path)]
    command += ["--layers", str(args.layers)] if args.layers else []
    command += ["--dtype", args.dtype] if args.dtype else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{path} path: the training job failed:\n{done.stderr[-3000:]}")
    rows = metric_rows(out)
    steps = [r["step_seconds"] for r in rows if "step_seconds" in r]
    timed = steps[args.skip :]
    seconds = statistics.median(timed)
    return {
        "path": path,
        "batch_size": cfg.batch_size,
        "sequence_tokens": cfg.sequence_length,
        "steps_timed": len(timed),
        "first_steps_seconds": steps[: args.skip],
        "median_step_seconds": seconds,
        "steps_per_second": 1 / seconds,
        "tokens_per_second": cfg.batch_size * cfg.sequence_length / seconds,
        "job_seconds": time.perf_counter() - began,
        "final_loss": rows[-1].get("loss"),
        "losses": [r["loss"] for r in rows if "loss" in r],
        "grad_norms": [r["grad_norm"] for r in rows if "grad_norm" in r],
    }


def largest_relative_difference(values: list[float], reference: list[float]) -> float:
    if len(values) != len(reference):
        raise ValueError(f"{len(values)} values against {len(reference)} reference values")
    return max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(values, reference, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--skip", type=int, default=6, help="first steps left out of the median")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's (16)")
    parser.add_argument("--layers", type=int, default=None, help="fewer layers for a quick CPU check")
    parser.add_argument("--paths", nargs="*", default=list(PATHS), choices=list(PATHS))
    parser.add_argument(
        "--dtype", choices=["bfloat16", "float32"], default=None, help="default: bf16 on a GPU"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep each path's trainer output here")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # the same process as data_parallel's ranks: random model, then train()
        worker(args.worker, args.layers, args.dtype)
        return

    import torch

    gpus = torch.cuda.device_count()
    report = {
        "device": torch.cuda.get_device_name(0) if gpus else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "recipe": str(RECIPE.relative_to(ROOT)),
        "layers": args.layers or 30,
        "dtype": args.dtype or ("bfloat16" if gpus else "float32"),
        "command": " ".join(["python", "benchmarks/stage1_recipe.py"] + sys.argv[1:]),
        "results": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = Path(tmp) / "rows.jsonl"
        cfg = recipe_config(args, "plain", data, work)
        write_random_rows(data, cfg.batch_size * (args.steps + 1), cfg.sequence_length - 1)
        for path in args.paths:  # each path's row is printed and saved as soon as it has run
            row = run_path(path, args, data, work)
            report["results"].append(row)
            compare(row, report["results"][0])
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=2) + "\n")


def compare(row: dict, first: dict) -> None:
    """Add ``row``'s speed-up and loss / gradient-norm differences against the first path's row; print it."""
    row["speedup"] = row["steps_per_second"] / first["steps_per_second"]
    for key in ("losses", "grad_norms"):
        row[f"{key}_largest_relative_difference"] = largest_relative_difference(row[key], first[key])
    print(
        f"{row['path']}: {row['median_step_seconds']:.3f} s/step ({row['steps_per_second']:.2f} steps/s, "
        f"{row['tokens_per_second']:,.0f} tokens/s), x{row['speedup']:.2f}; final loss "
        f"{row['final_loss']:.5f}, per-step losses within {row['losses_largest_relative_difference']:.1e} "
        f"and gradient norms within {row['grad_norms_largest_relative_difference']:.1e} of {first['path']}",
        flush=True,
    )


if __name__ == "__main__":
    main()
