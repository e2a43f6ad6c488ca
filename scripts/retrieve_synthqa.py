"""Retrieve passages for the synthetic QA test split with the default embedder, once, on any CPU.

    python scripts/retrieve_synthqa.py --out benchmarks/data/synthqa-test-k5.json

The JSON (question id → doc ids, least → most relevant) lets the generation half of the QA evaluation
run on another machine (e.g. a GPU without the embedder package) over exactly the same passages.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--entities", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()

    from ragcompress.defaults import DEFAULT_EMBEDDER_ID, load_default_embedder
    from ragcompress.eval.qa import retrieve
    from ragcompress_tools.synthqa import generate

    dataset = generate(args.split, args.entities, args.seed)
    result = retrieve(dataset, args.k, load_default_embedder("cpu"))
    result.update(split=args.split, entities=args.entities, seed=args.seed, embedder=DEFAULT_EMBEDDER_ID)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"{len(result['results'])} questions, recall@{args.k} = {result['recall_at_k']:.3f} → {args.out}")


if __name__ == "__main__":
    main()
