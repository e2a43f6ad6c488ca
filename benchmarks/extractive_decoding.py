"""What extractive decoding costs: fused answers with and without the passage-span constraint.

The default compressor answers the first N questions of the synthetic QA test split (k = 5 passages
from benchmarks/data/synthqa-test-k5.json). The passages are compressed once, outside the timing, as
an index would hold them. The same batches are then generated twice, greedy, with and without
``extractive=True``. The benchmark reports seconds per question for each, the overhead and the
constraint's share of it, and how many answers the constraint changed.

    python benchmarks/extractive_decoding.py --out benchmarks/results/extractive_decoding-cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from ragcompress import load_default
    from ragcompress.defaults import ADAPTER_DIR
    from ragcompress.modeling import compress
    from ragcompress.retrieval import extractive
    from ragcompress.retrieval.generation import generate_outputs
    from ragcompress_tools.synthqa import generate

    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_default(device=device)
    data = generate("test", 300, seed=0)
    retrieval = json.loads((ROOT / "benchmarks" / "data" / "synthqa-test-k5.json").read_text())
    texts = dict(data.documents)
    questions = data.questions[: args.questions]
    passages = [[texts[d] for d in retrieval["results"][q["id"]]] for q in questions]
    needed = sorted({d for q in questions for d in retrieval["results"][q["id"]]})
    vectors = dict(zip(needed, compress(model, tokenizer, [texts[d] for d in needed], to_cpu=False)))
    fused = [[vectors[d] for d in retrieval["results"][q["id"]]] for q in questions]

    # time spent inside the constraint itself (decoding candidates, searching the passages)
    inside = {"seconds": 0.0}
    original_call = extractive.PassageSpanConstraint.__call__

    def timed_call(self, input_ids, scores):
        started = time.perf_counter()
        try:
            return original_call(self, input_ids, scores)
        finally:
            inside["seconds"] += time.perf_counter() - started

    extractive.PassageSpanConstraint.__call__ = timed_call

    def run(flag: bool):
        started = time.perf_counter()
        outputs = generate_outputs(
            model,
            tokenizer,
            [q["question"] for q in questions],
            passages,
            mode="fused",
            passage_vectors=fused,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            extractive=flag,
        )
        return time.perf_counter() - started, outputs

    adapter_meta = json.loads((ADAPTER_DIR / "ragcompress.json").read_text())
    run(False)  # warm-up: first-call allocations and kernel selection
    plain_s, plain = run(False)
    extractive_s, constrained = run(True)
    n = len(questions)
    result = {
        "device": torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "model": f"default adapter, {adapter_meta['total_steps']} training steps",
        "questions": n,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "seconds_per_question": {"fused": plain_s / n, "fused_extractive": extractive_s / n},
        "overhead": extractive_s / plain_s - 1,
        "constraint_seconds_per_question": inside["seconds"] / n,
        "generated_tokens_per_question": {
            "fused": sum(o.generated_tokens for o in plain) / n,
            "fused_extractive": sum(o.generated_tokens for o in constrained) / n,
        },
        "answers_changed": sum(a.text.strip() != b.text.strip() for a, b in zip(plain, constrained)),
        "command": "python benchmarks/extractive_decoding.py " + " ".join(sys.argv[1:]),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
