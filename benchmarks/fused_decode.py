"""Fused vs full-text answering speed, plain ``generate`` vs the fast decode path (issue 28, part 2).

A random-weight AutoCompressor of Llama-2-7B's shape (bf16, SDPA; nothing downloaded) answers a 32-token
question from k = 10 passages of 512 tokens: ``fused`` reads their 10 × 50 = 500 summary vectors (made by
the model from the passages, as indexing would) as a soft prompt, ``text`` reads the 5,120 passage tokens
in the prompt. For each mode, batch size and decode path it measures

* time to first token: the whole call with one new token (prefill, soft prompt included, and one step);
* generated tokens/s with 64 new tokens (no end-of-sequence stop): ``batch × 64 / call time``, and the
  decode rate after the first token, ``batch × 63 / (call time − time to first token)``;
* greedy token agreement of the fast path with ``generate`` (bf16: kernels differ, so near-ties may flip).

Then the largest batch each mode fits through the fast path (doubling until the GPU runs out of memory).
Rows print as they finish and the JSON at ``--out`` is rewritten after each, so a cut-short run keeps
what it measured. ``--layers 2 --hidden 256`` runs the same code on a CPU in seconds (a check, not a result).

    python benchmarks/fused_decode.py --out benchmarks/results/fused_decode-h200.json

``--profile fused:1`` first writes where such a call spends the device's time (torch.profiler's operator
table, beside ``--out``); ``--prompt-bucket N`` runs the fast path with another prompt padding bucket.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import transformers
from transformers import LlamaConfig

from ragcompress.modeling import AutoCompressor, fast_decode, step_graph
from ragcompress.modeling.fast_decode import fast_generate, release_fast_decode

# the fast path's compiled rows: fast_generate's compile argument for each, and the row of each kind
COMPILED = {"fast+compile": True, "fast+compile-dynamic": "dynamic", "fast+compile-regional": "regional"}
KIND_PATHS = {
    "static": "fast+compile",
    "dynamic": "fast+compile-dynamic",
    "regional": "fast+compile-regional",
}


def llama2_7b_config(layers: int, hidden: int) -> LlamaConfig:
    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=hidden,
        intermediate_size=hidden * 11008 // 4096,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 128,
        num_key_value_heads=hidden // 128,
        max_position_embeddings=8192,  # the text prompt (5,152 tokens + 64 new) is longer than Llama-2's 4,096
        eos_token_id=2,
        pad_token_id=0,
    )
    config._attn_implementation = "sdpa"
    return config


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def calls(fn, device, repeats: int) -> list[tuple[float, object]]:
    """``repeats`` timed calls of ``fn`` after one untimed warm-up call: (seconds, result) each."""
    fn()
    runs = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        runs.append((time.perf_counter() - start, out))
    return runs


def timed(fn, device, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls (after one untimed warm-up call) and the last result."""
    runs = calls(fn, device, repeats)
    return statistics.median(seconds for seconds, _ in runs), runs[-1][1]


class Bench:
    def __init__(self, args):
        self.args = args
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        torch.manual_seed(0)
        with self.device:
            self.model = AutoCompressor.from_config(
                llama2_7b_config(args.layers, args.hidden), dtype=dtype
            ).eval()
        self.model.generation_config.eos_token_id = None
        g = torch.Generator().manual_seed(1)
        self.passages = torch.randint(3, 32000, (args.k, args.passage_tokens), generator=g).to(self.device)
        self.question = torch.randint(3, 32000, (1, args.question_tokens), generator=g).to(self.device)
        with torch.inference_mode():  # summary vectors of the k passages, as indexing makes them
            soft = self.model(input_ids=self.passages, output_softprompt=True, logits_to_keep=1).softprompt
        self.softprompt = soft.reshape(1, -1, soft.shape[-1])
        self.rows: list[dict] = []
        self.meta = {
            "device": torch.cuda.get_device_name(self.device)
            if self.device.type == "cuda"
            else platform.machine(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "shape": f"Llama-2-7B ({args.layers} layers, width {args.hidden}), {dtype}, SDPA, random weights",
            "k": args.k,
            "passage_tokens": args.passage_tokens,
            "question_tokens": args.question_tokens,
            "softprompt_slots": self.softprompt.shape[1],
            "new_tokens": args.new_tokens,
        }

    def inputs(self, mode: str, batch: int):
        if mode == "text":
            ids = torch.cat([self.passages.reshape(1, -1), self.question], dim=1).expand(batch, -1)
            soft = None
        else:
            ids, soft = self.question.expand(batch, -1), self.softprompt.expand(batch, -1, -1)
        return ids.contiguous(), torch.ones_like(ids), soft

    def call(self, path: str, mode: str, batch: int, new_tokens: int):
        ids, mask, soft = self.inputs(mode, batch)
        kwargs = dict(max_new_tokens=new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0)

        @torch.inference_mode()
        def run():
            if path.startswith("fast"):
                return fast_generate(self.model, ids, mask, soft, compile=COMPILED.get(path, False), **kwargs)
            return self.model.generate(ids, attention_mask=mask, softprompt=soft, **kwargs)

        return run

    def row(self, mode: str, batch: int, path: str, repeats: int) -> tuple[dict, torch.Tensor]:
        first_call = time.perf_counter()
        self.call(path, mode, batch, 1)()  # warm-up: graph capture for the fast path
        sync(self.device)
        warmup = time.perf_counter() - first_call
        ttft, _ = timed(self.call(path, mode, batch, 1), self.device, repeats)
        full, out = timed(self.call(path, mode, batch, self.args.new_tokens), self.device, repeats)
        n = self.args.new_tokens
        row = {
            "mode": mode,
            "batch": batch,
            "path": path,
            "ttft_ms": round(ttft * 1e3, 2),
            "call_s": round(full, 4),
            "tokens_per_s": round(batch * n / full, 1),
            "decode_tokens_per_s": round(batch * (n - 1) / (full - ttft), 1) if full > ttft else None,
            "first_call_s": round(warmup, 2),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1)
            if self.device.type == "cuda"
            else None,
        }
        return row, out[:, -n:].cpu()

    def save(self) -> None:
        print(json.dumps(self.rows[-1]), flush=True)
        if self.args.out:
            Path(self.args.out).write_text(json.dumps({**self.meta, "rows": self.rows}, indent=1) + "\n")

    def free(self) -> None:
        release_fast_decode(self.model)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()


def agreement(a: torch.Tensor, b: torch.Tensor) -> dict:
    equal = a == b
    first = [int(row.logical_not().int().argmax()) if not row.all() else row.numel() for row in equal]
    return {
        "tokens_equal": round(float(equal.float().mean()), 4),
        "rows_identical": round(float(equal.all(-1).float().mean()), 4),
        "mean_first_difference": round(statistics.mean(first), 1),
    }


def profile(bench: Bench, spec: str, path: Path) -> None:
    """Where a fast-path time-to-first-token call spends the device's time: torch.profiler's operators,
    most device time first, written to ``path`` (a text table)."""
    mode, batch, route = (spec.split(":") + ["fast"])[:3]
    call = bench.call(route, mode, int(batch), 1)
    call()  # capture outside the profile
    sync(bench.device)
    activities = [torch.profiler.ProfilerActivity.CPU]
    activities += [torch.profiler.ProfilerActivity.CUDA] if bench.device.type == "cuda" else []
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(3):
            call()
        sync(bench.device)
    key = "self_device_time_total" if bench.device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=30, max_name_column_width=70)
    path.write_text(f"{mode}, batch {batch}, 3 calls with one new token, {route}\n{table}\n")
    print(f"profile of {spec} written to {path}", flush=True)
    bench.free()


def fp32_agreement(bench: Bench) -> None:
    """The same model in fp32: greedy tokens of the fast path against generate's, padded rows included."""
    bench.free()
    model = bench.model
    bench.model = model.float()
    try:
        for mode, lengths in (("fused", [32]), ("fused", [32, 20, 27, 9]), ("text", None)):
            ids, _, soft = bench.inputs(mode, len(lengths or [1]))
            lengths = lengths or [ids.shape[1]]
            mask = torch.ones_like(ids)
            for row, n in enumerate(lengths):  # shorter questions: left padding
                mask[row, : ids.shape[1] - n] = 0
            kwargs = dict(max_new_tokens=bench.args.new_tokens, eos_token_id=None, pad_token_id=0)
            with torch.inference_mode():
                plain = model.generate(ids, attention_mask=mask, softprompt=soft, **kwargs)
                fast = fast_generate(model, ids, mask, soft, **kwargs)
            row = {"mode": mode, "batch": len(lengths), "path": "fp32 check", "question_tokens": lengths}
            row["agreement_with_plain"] = agreement(
                fast[:, ids.shape[1] :].cpu(), plain[:, ids.shape[1] :].cpu()
            )
            bench.rows.append(row)
            bench.save()
    finally:
        bench.free()
        bench.model = model.to(torch.bfloat16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--passage-tokens", type=int, default=512)
    parser.add_argument("--question-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--largest", default="fused:32,64,128,256,512;text:24,32,48,64", help="batches to try"
    )
    parser.add_argument("--fp32-check", action="store_true", help="greedy agreement of the two paths in fp32")
    parser.add_argument(
        "--compiled", default="fused:1,16", help="rows of the fast path with torch.compile, last"
    )
    parser.add_argument(
        "--compile-kinds",
        default="static",
        help="static (one compilation per batch and cache bucket), dynamic (symbolic sizes) and/or regional "
        "(one decoder layer compiled for all), comma-separated",
    )
    parser.add_argument("--budget-s", type=float, default=480, help="start no row after this many seconds")
    parser.add_argument(
        "--prompt-bucket", type=int, default=None, help="fast_decode.PROMPT_BUCKET for this run"
    )
    parser.add_argument(
        "--cache-buckets",
        default="",
        help="fast_decode.CACHE_BUCKET values, comma-separated: each --compiled row runs once per value "
        "(default: the library's)",
    )
    parser.add_argument(
        "--prompt-graph-tokens",
        type=int,
        default=None,
        help="fast_decode.PROMPT_GRAPH_TOKENS for this run (0: every prompt through the model's forward)",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="MODE:BATCH[:PATH][,...]: profile those calls first (PATH: fast, fast+compile-dynamic, ...), "
        "tables beside --out",
    )
    parser.add_argument(
        "--compile-prompt",
        choices=("on", "off"),
        help="step_graph.COMPILE_PROMPT for this run (default: the library's, on): compile='dynamic' "
        "compiles the short-prompt step too",
    )
    args = parser.parse_args()
    unknown = set(args.compile_kinds.split(",")) - set(KIND_PATHS)
    if unknown:
        parser.error(f"--compile-kinds: {sorted(unknown)} unknown; use {', '.join(KIND_PATHS)}")
    started = time.perf_counter()
    if args.prompt_bucket:
        fast_decode.PROMPT_BUCKET = args.prompt_bucket
    if args.prompt_graph_tokens is not None:
        fast_decode.PROMPT_GRAPH_TOKENS = args.prompt_graph_tokens
    if args.compile_prompt:
        step_graph.COMPILE_PROMPT = args.compile_prompt == "on"
    library_bucket = fast_decode.CACHE_BUCKET
    cache_buckets = [int(b) for b in filter(None, args.cache_buckets.split(","))] or [library_bucket]
    bench = Bench(args)
    bench.meta["prompt_bucket"] = fast_decode.PROMPT_BUCKET
    bench.meta["cache_bucket"] = library_bucket  # rows with another one say so (cache_bucket)
    bench.meta["prompt_graph_tokens"] = fast_decode.PROMPT_GRAPH_TOKENS
    bench.meta["compile_prompt"] = step_graph.COMPILE_PROMPT
    print(json.dumps(bench.meta), flush=True)
    folder = Path(args.out).parent if args.out else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    for spec in filter(None, args.profile.split(",")):
        profile(
            bench,
            spec,
            folder / f"profile-{spec.replace(':', '-b', 1).replace(':', '-').replace('+', '_')}.txt",
        )
    plain = {}  # (mode, batch) -> generate's tokens, to compare the compiled rows with
    for batch in [int(b) for b in filter(None, args.batches.split(","))]:
        for mode in ("fused", "text"):
            outputs = {}
            for path in ("plain", "fast"):
                if time.perf_counter() - started > args.budget_s:
                    return
                row, outputs[path] = bench.row(mode, batch, path, args.repeats)
                plain[mode, batch] = outputs["plain"]
                if path == "fast":
                    row["agreement_with_plain"] = agreement(outputs["fast"], outputs["plain"])
                bench.rows.append(row)
                bench.save()
                bench.free()
    for spec in filter(None, args.largest.split(";")):
        mode, sizes = spec.split(":")
        for batch in [int(b) for b in sizes.split(",")]:
            if time.perf_counter() - started > args.budget_s:
                return
            try:
                row, _ = bench.row(mode, batch, "fast", 1)
            except RuntimeError as error:  # torch.OutOfMemoryError, or a library's failed allocation
                print(f"{mode} batch {batch}: {str(error).splitlines()[0][:200]}", flush=True)
                bench.rows.append({"mode": mode, "batch": batch, "path": "fast", "out_of_memory": True})
                bench.save()
                bench.free()
                break
            bench.rows.append(row)
            bench.save()
            bench.free()
    for spec in filter(None, args.compiled.split(";")):
        mode, sizes = spec.split(":")
        for batch in [int(b) for b in sizes.split(",")]:
            if time.perf_counter() - started > args.budget_s:
                return
            for kind, cache_bucket in itertools.product(args.compile_kinds.split(","), cache_buckets):
                if time.perf_counter() - started > args.budget_s:
                    return
                fast_decode.CACHE_BUCKET = cache_bucket
                path = KIND_PATHS[kind]
                row, out = bench.row(mode, batch, path, args.repeats)
                row["cache_bucket"] = cache_bucket
                if (mode, batch) in plain:
                    row["agreement_with_plain"] = agreement(out, plain[mode, batch])
                bench.rows.append(row)
                bench.save()
                bench.free()
    fast_decode.CACHE_BUCKET = library_bucket
    # last: casting to fp32 and back changes buffers kept in fp32 (rotary inv_freq) for later rows
    if args.fp32_check and time.perf_counter() - started < args.budget_s:
        fp32_agreement(bench)


if __name__ == "__main__":
    main()
