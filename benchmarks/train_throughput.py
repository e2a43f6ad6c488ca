"""AutoCompressor training throughput vs plain causal-LM fine-tuning of the same model, same GPU, same run.

Both train on the same random token batches ([batch, 2048]); "tokens" are text tokens. The AutoCompressor
step is the trainer's own `lm_substeps` (2 substeps × 2 segments × 512 tokens, κ = 50 summary tokens,
soft prompt accumulated and detached between substeps). Model: a random-weight model of SmolLM2-135M's
shape (benchmarks/smollm2_135m_config.json), so no download is needed. bf16 autocast, AdamW.

    python benchmarks/train_throughput.py --out benchmarks/results/train_throughput.json
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

from ragcompress.modeling import AutoCompressor
from ragcompress.training import TrainConfig
from ragcompress.training.lora import apply_lora
from ragcompress.training.steps import lm_substeps

HERE = Path(__file__).parent


def model_config(layers: int | None) -> LlamaConfig:
    data = json.loads((HERE / "smollm2_135m_config.json").read_text())
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


def measure(kind: str, lora: bool, args, device) -> dict:
    torch.manual_seed(0)
    config = model_config(args.layers)
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
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    bf16 = device.type == "cuda"
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    cfg = TrainConfig(
        train_data=["-"],
        segment_length=512,
        segments_per_substep=2,
        training_substeps=2,
        randomize_segments=False,
        summary_length=args.summary_length,
    )
    batch = torch.randint(0, config.vocab_size, (args.batch_size, cfg.sequence_length), device=device)

    def step():
        if kind == "plain":
            with autocast():
                loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
        else:
            lm_substeps(model, batch, cfg, None, 1.0, autocast)  # (losses, KL terms): unused here
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(step, args.warmup, args.steps, device)
    if args.profile:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            wall = timed(step, 0, 3, device)
        events = prof.key_averages()
        gpu = sum(e.self_device_time_total for e in events) / 3 / 1e6
        print(
            f"[profile {kind} lora={lora} batch={args.batch_size}] wall {wall:.3f} s/step, "
            f"GPU kernels {gpu:.3f} s/step",
            flush=True,
        )
        sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(events.table(sort_by=sort, row_limit=12, max_name_column_width=60), flush=True)
    result = {
        "kind": kind,
        "lora": lora,
        "seconds_per_step": seconds,
        "tokens_per_second": args.batch_size * cfg.sequence_length / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--summary-length", type=int, default=50)
    parser.add_argument("--layers", type=int, default=None, help="fewer layers for a quick CPU check")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="print where the time goes (torch.profiler)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for lora in (False, True):
        plain = measure("plain", lora, args, device)
        torch.cuda.empty_cache() if device.type == "cuda" else None
        compressor = measure("autocompressor", lora, args, device)
        torch.cuda.empty_cache() if device.type == "cuda" else None
        compressor["ratio_to_plain"] = compressor["tokens_per_second"] / plain["tokens_per_second"]
        rows += [plain, compressor]
        print(json.dumps(plain), json.dumps(compressor), sep="\n", flush=True)
    report = {
        "benchmark": "train_throughput",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "sequence_length": 2048,
        "summary_length": args.summary_length,
        "layers": args.layers or "all (30)",
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
