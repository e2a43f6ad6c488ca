"""Retrieve passages for the synthetic QA test split with the default embedder, once, on any CPU.

    python scripts/retrieve_synthqa.py --out benchmarks/data/synthqa-test-k5.json

The JSON (question id → doc ids, least → most relevant) fixes the passages of
benchmarks/extractive_decoding.py, which times decoding over the very same passages on any machine. QA
evaluation goes through an index instead (`ragcompress eval qa`, `scripts/train_default.py eval`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def retrieve(dataset, k: int, embedder, batch_size: int = 64) -> dict:
    """Top-k whole documents per question by exact inner product, least → most relevant, and recall@k."""
    import faiss
    import numpy as np

    doc_ids = [d for d, _ in dataset.documents]
    docs = embedder.encode(
        [t for _, t in dataset.documents], batch_size=batch_size, normalize_embeddings=True
    )
    questions = embedder.encode(
        [q["question"] for q in dataset.questions], batch_size=batch_size, normalize_embeddings=True
    )
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(np.ascontiguousarray(docs, dtype=np.float32))
    _, found = index.search(np.ascontiguousarray(questions, dtype=np.float32), min(k, len(doc_ids)))
    results, hits = {}, 0
    for question, row in zip(dataset.questions, found):
        ranked = [doc_ids[i] for i in row if i >= 0]
        hits += any(g in ranked for g in question["doc_ids"])
        results[question["id"]] = ranked[::-1]
    return {"k": k, "recall_at_k": hits / max(len(dataset.questions), 1), "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--entities", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()

    from ragcompress.defaults import DEFAULT_EMBEDDER_ID, load_default_embedder
    from ragcompress_tools.synthqa import generate

    dataset = generate(args.split, args.entities, args.seed)
    result = retrieve(dataset, args.k, load_default_embedder("cpu"))
    result.update(split=args.split, entities=args.entities, seed=args.seed, embedder=DEFAULT_EMBEDDER_ID)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"{len(result['results'])} questions, recall@{args.k} = {result['recall_at_k']:.3f} → {args.out}")


if __name__ == "__main__":
    main()
