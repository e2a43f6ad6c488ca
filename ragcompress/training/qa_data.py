"""Fused-QA training examples for stage 2, read from datasets in the DESIGN.md evaluation format.

Each example is ``{"question", "answer", "passages": [k texts, least → most relevant], "text_mode"}``.
Several distractor draws ("variants") of every question are materialised once, then batches are picked
by the same pure step → rows function as language-modelling data, so resumed runs see the same data.
"""

from __future__ import annotations

import hashlib

from ragcompress.training.data import batch_indices


class QAExamples:
    def __init__(self, dirs: list[str], k: int, seed: int, text_fraction: float = 0.0, variants: int = 4):
        from ragcompress.eval.synthqa import read, training_examples

        self.examples: list[dict] = []
        for directory in dirs:
            dataset = read(directory)
            for variant in range(variants):
                for example in training_examples(dataset, k=k, rng_seed=seed * 1000 + variant):
                    key = f"{directory}|{variant}|{example['question']}".encode()
                    share = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
                    self.examples.append({**example, "text_mode": share < text_fraction})
        if not self.examples:
            raise ValueError(f"qa_data {dirs}: no questions found; check questions.jsonl")
        self.seed = seed

    def __len__(self) -> int:
        return len(self.examples)

    def batch(
        self, step: int, micro: int, grad_accum: int, batch_size: int, world: int, rank: int
    ) -> list[dict]:
        rows = batch_indices(
            step, micro, grad_accum, batch_size, world, rank, len(self.examples), self.seed + 1
        )
        return [self.examples[i] for i in rows]
