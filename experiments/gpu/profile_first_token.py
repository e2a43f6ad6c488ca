"""Where a batch-1 fused answer's first token spends the time its stages do not account for (issue 28).

answer_e2e.py's batch-1 row on an H100 (regional step, vectors held) takes 19.7 ms to the first token, of
which its stages (retrieve, fuse, prefill, decode) are 18.2 ms. This builds (or reuses) the index of the same
shape (answer_e2e.py's, reused from its ``--work`` when there), answers one question many times with one
new token, k = 10, and writes under ``--out``:

* ``segments.json``: the median host seconds of each function on the path (wrapped here, not edited),
  the Answer's stages and the whole call;
* ``trace.json.gz``: a torch.profiler trace of a few calls (CPU and CUDA), for the idle GPU between stages;
* ``ops.txt``: the profiler's table of host and device time per operation.

    python experiments/gpu/profile_first_token.py --out $OUT
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]
from answer_e2e import save_embedder, word_tokenizer, words, write_corpus  # noqa: E402
from fused_decode import calls, llama2_7b_config  # noqa: E402

import ragcompress.modeling.fast_decode as fast_decode  # noqa: E402
import ragcompress.modeling.step_graph as step_graph  # noqa: E402
import ragcompress.retrieval.generation as generation  # noqa: E402
import ragcompress.retrieval.plan as plan  # noqa: E402
import ragcompress.retrieval.retriever as retriever_module  # noqa: E402
from ragcompress.modeling.step_compile import COMPILE_SETTINGS  # noqa: E402

SEGMENTS: dict[str, list[float]] = {}
WRAPPED = [
    (generation, "prompt_rows"),
    (generation, "left_pad"),
    (generation, "_decode_fast"),
    (generation, "fast_generate"),
    (generation, "_generate"),
    (plan, "generate_outputs"),
    (retriever_module, "run_plans"),
    (retriever_module, "make_answer"),
    (fast_decode, "step_graph"),
    (fast_decode, "choose_next_token"),
]
METHODS = ["_prepare", "_plan", "_fetch", "search_batch", "_vectors"]


def timed(name: str, function):
    @functools.wraps(function)
    def run(*args, **kwargs):
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SEGMENTS.setdefault(name, []).append(time.perf_counter() - began)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--passages", type=int, default=10000)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--compile-decode", default="regional")
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument(
        "--prompt-buckets", default="64,16,8", help="fast_decode.PROMPT_BUCKET values timed after the profile"
    )
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/e2e"), help="answer_e2e.py's --work: its index is reused"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from indexing.pipeline import index_corpus
    from ragcompress import Retriever
    from ragcompress.compressor import Compressor, CompressorInfo
    from ragcompress.embedder import Embedder
    from ragcompress.modeling import AutoCompressor

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tokenizer = word_tokenizer()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    with device:
        model = AutoCompressor.from_config(llama2_7b_config(args.layers, args.hidden), dtype=dtype).eval()
    compressor = Compressor(model, tokenizer)
    identity = f"random Llama-2-7B shape ({args.layers} layers, width {args.hidden}), seed 0"  # answer_e2e's
    compressor.info = CompressorInfo(identity, "seed-0", compressor.summary_length, compressor.hidden_size)
    embedder = Embedder.load(save_embedder(args.work / "embedder", tokenizer, 6, 384), device=device)
    corpus = write_corpus(args.work / "corpus", args.passages, 512)
    index_corpus(
        corpus,
        args.work / "index",
        model=compressor,
        embedder=embedder,
        chunk_tokens=512,
        overlap=0,
        vector_dtype="fp16",
        faiss_kind="flat",
        batch_size=64,
        progress=False,
    )
    question = [words(random.Random(1), 32)]
    result: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    with Retriever(
        args.work / "index",
        model=compressor,
        embedder=embedder,
        compile_decode=COMPILE_SETTINGS[args.compile_decode],
    ) as retriever:
        result["warm_up_s"] = retriever.warm_up(batches=(1,))

        def answer():
            return retriever.answer_batch(question, k=10, mode="fused", batch_size=1, max_new_tokens=1)

        for _ in range(5):
            answer()
        for module, name in WRAPPED:
            setattr(module, name, timed(name, getattr(module, name)))
        for name in METHODS:
            setattr(retriever_module.Retriever, name, timed(name, getattr(retriever_module.Retriever, name)))
        for name in ("wipe", "prompt"):  # the static cache's zeroing, the prompt's graph
            setattr(step_graph.StepGraph, name, timed(name, getattr(step_graph.StepGraph, name)))
        runs = calls(answer, device, args.calls)
        stages = [out[0].timings for _, out in runs]
        result["call_ms"] = statistics.median(seconds for seconds, _ in runs) * 1e3
        result["stages_ms"] = {k: statistics.median(s[k] for s in stages) * 1e3 for k in stages[0]}
        result["segments_ms"] = {k: statistics.median(v) * 1e3 for k, v in SEGMENTS.items()}
        (args.out / "segments.json").write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1), flush=True)

        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], with_stack=False) as prof:
            for _ in range(3):
                answer()
            sync()
        trace = args.work / "trace.json"
        prof.export_chrome_trace(str(trace))
        with open(trace, "rb") as source, gzip.open(args.out / "trace.json.gz", "wb") as target:
            shutil.copyfileobj(source, target)
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=60)
        (args.out / "ops.txt").write_text(table)

        # the prompt's padding: a finer bucket pads fewer slots (545 → 576 at 64) for more captured graphs
        result["prompt_buckets"] = []
        for bucket in (int(b) for b in args.prompt_buckets.split(",")):
            fast_decode.PROMPT_BUCKET = bucket
            answer()  # captures this bucket's prompt graph
            runs = calls(answer, device, args.calls)
            result["prompt_buckets"].append(
                {
                    "bucket": bucket,
                    "call_ms": statistics.median(seconds for seconds, _ in runs) * 1e3,
                    "prefill_ms": statistics.median(out[0].timings["prefill"] for _, out in runs) * 1e3,
                }
            )
            (args.out / "segments.json").write_text(json.dumps(result, indent=1) + "\n")
            print(json.dumps(result["prompt_buckets"][-1]), flush=True)


if __name__ == "__main__":
    main()
