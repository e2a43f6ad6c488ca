"""AutoCompressor training throughput vs plain causal-LM fine-tuning of the same model, same GPU, same run.

Both train on the same random token batches ([batch, 2048]); "tokens" are text tokens. The AutoCompressor
step is the trainer's own `lm_substeps` (2 substeps × 2 segments × 512 tokens, κ = 50 summary tokens,
soft prompt accumulated and detached between substeps). Model: a random-weight model of SmolLM2-135M's
shape (benchmarks/smollm2_135m_config.json), so no download is needed. bf16 autocast, AdamW (fused on GPUs).

With ``--fast`` a third row per setting runs the trainer's fast path (`ragcompress.training.fastpath`:
bucketed static shapes, causal SDPA without masks, decoder layers compiled); ``--llama1b`` adds the same
rows for TinyLlama-1.1B's shape (benchmarks/tinyllama_1b_config.json). Each row prints as it finishes and
the JSON at ``--out`` is rewritten after every row, so a cut-short run keeps what it measured.

    python benchmarks/train_throughput.py --out benchmarks/results/train_throughput.json
    python benchmarks/train_throughput.py --fast --llama1b --out benchmarks/results/train_throughput-fast.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ragcompress.modeling import AutoCompressor, unwrap
from ragcompress.training import TrainConfig
from ragcompress.training.fastpath import COMPILE_MODES, COMPILE_SCOPES, FastSegmentLoop, compile_decoder
from ragcompress.training.lora import apply_lora
from ragcompress.training.steps import lm_substeps

HERE = Path(__file__).parent
SHAPES = {"smollm2-135m": "smollm2_135m_config.json", "tinyllama-1.1b": "tinyllama_1b_config.json"}


def model_config(layers: int | None, shape: str = "smollm2-135m") -> LlamaConfig:
    data = json.loads((HERE / SHAPES[shape]).read_text())
    config = LlamaConfig(
        **{k: v for k, v in data.items() if k not in ("architectures", "transformers_version")}
    )
    if layers:
        config.num_hidden_layers = layers
    config._attn_implementation = "sdpa"
    return config


def timed(step, warmup: int, steps: int, device) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - began) / steps


def measure(
    kind: str, lora: bool, args, device, shape: str = "smollm2-135m", steps=None, warmup=None
) -> dict:
    """tokens/s of one setting; ``kind`` is plain, autocompressor (the model's own loop) or fast."""
    steps, warmup = steps or args.steps, warmup if warmup is not None else args.warmup
    torch.manual_seed(0)
    config = model_config(args.layers, shape)
    dtype = torch.bfloat16 if (lora and device.type == "cuda") else torch.float32
    if kind == "plain":
        model = LlamaForCausalLM(config).to(dtype)
    else:
        model = AutoCompressor.from_config(config, summary_length=args.summary_length).to(dtype)
    if lora:
        if kind == "plain":
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(
                model, LoraConfig(r=16, lora_alpha=32, target_modules=list(TrainConfig().lora_targets))
            )
        else:
            model = apply_lora(model, r=16, alpha=32)
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    model.to(device).train()
    # fused AdamW on GPUs for every row (the trainer's optimizer is fused there too)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=device.type == "cuda" or None
    )
    bf16 = device.type == "cuda"
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    cfg = TrainConfig(
        train_data=["-"],
        segment_length=args.tokens // 4,
        segments_per_substep=2,
        training_substeps=2,
        randomize_segments=False,
        summary_length=args.summary_length,
    )
    fast = None
    if kind == "fast":
        fast = FastSegmentLoop(model, args.bucket)
        if not args.no_compile:
            compile_decoder(unwrap(model), args.compile_mode, args.compile_scope)
    batch = torch.randint(0, config.vocab_size, (args.batch_size, cfg.sequence_length), device=device)

    def step():
        if kind == "plain":
            with autocast():
                loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
        else:
            lm_substeps(model, batch, cfg, None, 1.0, autocast, None, fast)  # (losses, KL terms): unused
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    for _ in range(warmup):  # includes compiling on the fast path
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    warmup_seconds = time.perf_counter() - began
    seconds = timed(step, 0, steps, device)
    if args.profile:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            wall = timed(step, 0, 3, device)
        events = prof.key_averages()
        gpu = sum(e.self_device_time_total for e in events) / 3 / 1e6
        print(
            f"[profile {shape} {kind} lora={lora} batch={args.batch_size}] wall {wall:.3f} s/step, "
            f"GPU kernels {gpu:.3f} s/step",
            flush=True,
        )
        sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(events.table(sort_by=sort, row_limit=12, max_name_column_width=60), flush=True)
    return {
        "shape": shape,
        "kind": kind,
        "lora": lora,
        "seconds_per_step": seconds,
        "tokens_per_second": args.batch_size * cfg.sequence_length / seconds,
        "warmup_seconds": warmup_seconds,
        "steps": steps,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
    }


def guarded(*a, **k) -> dict:
    """`measure`, a row that runs out of GPU memory recorded as such instead of ending the run."""
    try:
        return measure(*a, **k)
    except torch.OutOfMemoryError as error:
        kind, lora = a[0], a[1]
        return {"shape": k.get("shape"), "kind": kind, "lora": lora, "error": f"out of memory: {error}"[:300]}
    finally:
        torch._dynamo.reset()  # drop the compiled graphs (and the model they hold) of this row
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=2048, help="tokens per sequence (4 segments)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--summary-length", type=int, default=50)
    parser.add_argument("--layers", type=int, default=None, help="fewer layers for a quick CPU check")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="print where the time goes (torch.profiler)")
    parser.add_argument("--fast", action="store_true", help="also measure the trainer's fast path")
    parser.add_argument("--bucket", type=int, default=64, help="fast path: segment bucket (tokens)")
    parser.add_argument("--no-compile", action="store_true", help="fast path without torch.compile")
    parser.add_argument("--compile-mode", default="default", choices=COMPILE_MODES)
    parser.add_argument("--compile-scope", default="layers", choices=COMPILE_SCOPES)
    parser.add_argument("--llama1b", action="store_true", help="also TinyLlama-1.1B's shape")
    parser.add_argument("--llama1b-steps", type=int, default=8, help="timed steps of the 1.1B rows")
    parser.add_argument("--only-lora", choices=("full", "lora"), default=None, help="one fine-tuning kind")
    parser.add_argument(
        "--skip-plain-path", action="store_true", help="leave out the AutoCompressor's plain-path rows"
    )
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kinds = ["plain"] + ([] if args.skip_plain_path else ["autocompressor"]) + (["fast"] if args.fast else [])
    loras = [lora for lora in (False, True) if args.only_lora in (None, "lora" if lora else "full")]
    plan = [("smollm2-135m", None, None)] + (
        [("tinyllama-1.1b", args.llama1b_steps, 2)] if args.llama1b else []
    )
    report = {
        "benchmark": "train_throughput",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "sequence_length": args.tokens,
        "summary_length": args.summary_length,
        "layers": args.layers or "all",
        "optimizer": "AdamW, fused on CUDA",
        "fast_path": {
            "bucket": args.bucket,
            "compile": not args.no_compile,
            "compile_mode": args.compile_mode,
            "compile_scope": args.compile_scope,
        },
        "rows": [],
    }
    for shape, steps, warmup in plan:
        for lora in loras:
            plain = None
            for kind in kinds:
                row = guarded(kind, lora, args, device, shape=shape, steps=steps, warmup=warmup)
                if kind == "plain":
                    plain = row
                elif "tokens_per_second" in row and plain and "tokens_per_second" in plain:
                    row["ratio_to_plain"] = row["tokens_per_second"] / plain["tokens_per_second"]
                report["rows"].append(row)
                print(json.dumps(row), flush=True)
                if args.out:
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
