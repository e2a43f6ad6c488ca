"""A warm `Retriever.answer()` on the CPU with the embedded defaults, per answer mode (issue 28's CPU row).

An index of the first ``--documents`` synthetic test documents is built with every default (serve_load.py's
``build_index``), one `Retriever` is opened on it and kept, and each mode answers ``--questions`` of the
documents' own questions twice, one `answer()` call each, k = ``--k``: once to warm up (the CPU kernels
are built per new input shape, which in bf16 costs a mode timed first about a third of its time), then
timed. Reported per
mode: median and 90th-percentile seconds per call, the median of each stage the `Answer` times (search,
vectors, generation), prompt tokens and soft-prompt slots. The machine's load average before and after is
recorded beside the numbers: on a shared machine read the ratios between modes.

    python benchmarks/cpu_answer.py --threads 2 --out benchmarks/results/cpu_answer.json

``--dtypes float32,bfloat16`` times the default compressor in each dtype in one run (default ``auto``:
the dtype the product loads it in here, bf16 on a CPU with bf16 instructions, `defaults.pick_dtype`). ``--decoders generate,fast`` times each mode through both decoders (``fast_decode`` False,
True), in one run: whether the GPU's fast decode path would pay on a CPU too.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from readme_sections import cpu_name, save_result  # noqa: E402
from serve_load import build_index  # noqa: E402

from ragcompress.eval.qa_metrics import score_predictions  # noqa: E402

HERE = Path(__file__).parent
MODES = ("none", "fused", "fused-extractive", "hybrid", "text")


def load_average() -> list[float]:
    with open("/proc/loadavg") as handle:
        return [float(x) for x in handle.read().split()[:3]]


DECODERS = {"generate": False, "fast": True}  # --decoders -> Retriever.answer's fast_decode


def gold_answers() -> dict[str, list[str]]:
    """question -> accepted answers, for the synthetic test documents `build_index` indexes."""
    from ragcompress_tools.synthqa import generate

    return {q["question"]: q["answers"] for q in generate("test", 300, seed=0).questions}


def time_mode(
    retriever,
    questions: list[str],
    mode: str,
    k: int,
    max_new_tokens: int,
    decoder: str = "generate",
    gold: dict[str, list[str]] | None = None,
) -> dict:
    base = mode.removesuffix("-extractive")
    extra = {"extractive": True} if mode.endswith("-extractive") else {}
    extra["fast_decode"] = DECODERS[decoder]
    for question in questions:  # warm-up: every prompt shape seen once
        retriever.answer(question, k=k, mode=base, max_new_tokens=max_new_tokens, **extra)
    walls, stages, prompt, slots, texts = [], {}, [], [], []
    for question in questions:
        started = time.perf_counter()
        answer = retriever.answer(question, k=k, mode=base, max_new_tokens=max_new_tokens, **extra)
        walls.append(time.perf_counter() - started)
        for stage, seconds in answer.timings.items():
            stages.setdefault(stage, []).append(seconds)
        prompt.append(answer.prompt_tokens)
        texts.append(answer.text)
        slots.append(answer.softprompt_slots)
    walls.sort()
    scores = score_predictions(texts, [gold[q] for q in questions]) if gold else None
    return {
        "mode": mode if decoder == "generate" else f"{mode} ({decoder} decoder)",
        "texts": texts,
        "em": scores.em if scores else None,
        "f1": scores.f1 if scores else None,
        "calls": len(walls),
        "median_s": statistics.median(walls),
        "p90_s": walls[max(0, math.ceil(0.9 * len(walls)) - 1)],  # nearest rank
        "stage_median_s": {stage: statistics.median(v) for stage, v in stages.items()},
        "prompt_tokens": statistics.mean(prompt),
        "softprompt_slots": statistics.mean(slots),
    }


def markdown(result: dict) -> str:
    stages = [
        s
        for s in ("retrieve", "rerank", "fuse", "prefill", "decode")
        if any(s in r["stage_median_s"] for r in result["runs"])
    ]
    head = " | ".join(f"{s} s" for s in stages)
    dtypes = " and ".join(dict.fromkeys(r.get("dtype", "float32") for r in result["runs"]))
    rows = "\n".join(
        f"| {r['mode']} | {r['median_s']:.2f} | {r['p90_s']:.2f} | "
        + " | ".join(f"{r['stage_median_s'].get(s, 0.0):.3f}" for s in stages)
        + f" | {r['prompt_tokens']:.0f} | {r['softprompt_slots']:.0f} | {r['em']:.2f} | {r['f1']:.2f} |"
        for r in result["runs"]
    )
    return f"""## A warm `answer()` on the CPU (issue 28)

One `Retriever` kept open over an index of {result["documents"]} synthetic test documents built with the
defaults (default compressor in {result.get("index_dtype", "float32")}, all-MiniLM-L6-v2, fp16 vectors), answered
by the default compressor in {dtypes}; k = {result["k"]}, at most
{result["max_new_tokens"]} new tokens, greedy; {result["questions"]} questions per mode, one `answer()` call each,
after answering the same questions once to warm up. Seconds per call (median, 90th percentile), the median of each stage the
`Answer` reports, and the answers' exact match and F1 against the questions' accepted answers.

| mode | median s | p90 s | {head} | prompt tokens | soft-prompt slots | EM | F1 |
|---|---:|---:|{"---:|" * len(stages)}---:|---:|---:|---:|
{rows}

Device: {result["device"]}; torch {result["torch"]}, {result["threads"]} thread(s). Load average
(1/5/15 min) before {result["load_before"]}, after {result["load_after"]}. {result["load_note"]}

Command: `{result["command"]}` (result: `results/{result["out_name"]}`, {result["date"]}).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=24)
    parser.add_argument("--questions", type=int, default=12, help="timed calls per mode")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--dtypes", default="auto", help="the compressor's: auto, float32 and/or bfloat16, comma-separated"
    )
    parser.add_argument(
        "--decoders", default="generate", help="generate and/or fast (the fast decode path), comma-separated"
    )
    parser.add_argument("--load-note", default="", help="what else ran on the machine meanwhile")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cpu_answer.json")
    parser.add_argument("--no-readme", action="store_true", help="do not update benchmarks/README.md")
    args = parser.parse_args()
    unknown = set(args.decoders.split(",")) - set(DECODERS)
    if unknown:
        parser.error(f"--decoders: {sorted(unknown)} unknown; use {', '.join(DECODERS)}")
    if set(args.dtypes.split(",")) - {"auto", "float32", "bfloat16"}:
        parser.error(f"--dtypes {args.dtypes!r}: use auto, float32 and/or bfloat16")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from ragcompress import Compressor, Retriever
    from ragcompress.defaults import DTYPES, dtype_name, pick_dtype

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="cpu-answer-") as tmp:
        started = time.perf_counter()
        index, questions = build_index(Path(tmp), args.documents)
        print(f"indexed {args.documents} documents in {time.perf_counter() - started:.0f} s", flush=True)
        questions = questions[: args.questions]
        gold = gold_answers()
        before = load_average()
        runs = []
        dtypes = args.dtypes.split(",")
        for named in dtypes:
            compressor = Compressor.load("default", device="cpu", dtype=DTYPES.get(named))  # auto: None
            dtype = dtype_name(compressor.dtype)
            with Retriever(index, model=compressor, device="cpu") as retriever:
                for mode in args.modes.split(","):
                    for decoder in args.decoders.split(","):
                        if decoder == "fast" and mode.endswith("-extractive"):
                            continue  # extractive answers constrain tokens with a logits processor
                        run = time_mode(
                            retriever, questions, mode, args.k, args.max_new_tokens, decoder, gold
                        )
                        run["dtype"] = dtype
                        if len(dtypes) > 1:
                            run["mode"] += f" ({dtype})"
                        runs.append(run)
                        print(runs[-1], flush=True)
        after = load_average()
    result = {
        "device": f"CPU: {cpu_name()} (this repository's shared CI/dev machine)",
        "torch": torch.__version__,
        "threads": args.threads,
        "dtypes": args.dtypes,
        "index_dtype": dtype_name(pick_dtype(torch.device("cpu"))),  # what build_index used
        "documents": args.documents,
        "questions": len(questions),
        "k": args.k,
        "max_new_tokens": args.max_new_tokens,
        "load_before": before,
        "load_after": after,
        "load_note": args.load_note,
        "runs": runs,
        "date": date.today().isoformat(),
        "command": "python benchmarks/cpu_answer.py " + shlex.join(sys.argv[1:]),
        "out_name": args.out.name,
    }
    save_result(result, args.out, "cpu_answer", markdown(result), readme=not args.no_readme)


if __name__ == "__main__":
    main()
