"""Fused-QA training examples for stage 2, read from datasets in the evaluation format of docs/design.md.

Each example is ``{"question", "answer", "passages": [k texts, least → most relevant], "text_mode"}``.
Several distractor draws ("variants") of every question are materialised once, then batches are picked
by the same pure step → rows function as language-modelling data, so resumed runs see the same data.
"""

from __future__ import annotations

from ragcompress.data.qa_dataset import read
from ragcompress.eval.heldout import refuse_heldout
from ragcompress.eval.qa_metrics import answer_kind
from ragcompress.training.data import batch_indices, stable_share
from ragcompress.training.qa_examples import training_examples


class QAExamples:
    """The stage-2 examples of ``dirs``; ``kind_weights`` (answer kind → weight, default 1) resamples them.

    A weight w gives each example of that kind ⌊w⌋ copies plus one more for a stable hash share of
    w − ⌊w⌋ of them, so 3 triples a kind, 0.5 halves it and 0 removes it, reproducibly.
    """

    def __init__(
        self,
        dirs: list[str],
        k: int,
        seed: int,
        text_fraction: float = 0.0,
        variants: int = 4,
        kind_weights: dict[str, float] | None = None,
    ):
        self.examples: list[dict] = []
        for number, directory in enumerate(dirs):
            dataset = read(directory)
            # evaluation-only sets (synthqa style "ood", the real-document set) must never be trained on
            refuse_heldout(dataset.questions, directory)
            for variant in range(variants):
                for example in training_examples(dataset, k=k, rng_seed=seed * 1000 + variant):
                    # the dataset's place in the list, not its path: the same choices on every machine
                    key = f"{number}|{variant}|{example['question']}"
                    weight = (kind_weights or {}).get(answer_kind(example["answers"]), 1.0)
                    copies = int(weight) + (stable_share(key + "|weight") < weight - int(weight))
                    example = {**example, "text_mode": stable_share(key) < text_fraction}
                    self.examples.extend([example] * copies)
        if not self.examples:
            raise ValueError(
                f"qa_data {dirs}: no questions found (or qa_kind_weights left none); check questions.jsonl"
            )
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
