"""Retrieval-QA results: what ``ragcompress eval qa`` writes (eval/index_qa.py makes them through the
product: an index of the corpus and ``Retriever.answer_batch``), and the paired comparison of two."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ragcompress.eval.qa_metrics import (
    ANSWER_KINDS,
    QAScores,
    answer_kind,
)


@dataclass
class QAResult:
    k: int
    recall_at_k: float
    scores: dict[str, dict] = field(default_factory=dict)  # mode -> {"em","f1","n"}
    predictions: dict[str, list[dict]] = field(default_factory=dict)
    # mode -> answer kind (year, number, name, word; see `answer_kind`) -> {"em","f1","n"}
    scores_by_kind: dict[str, dict[str, dict]] = field(default_factory=dict)
    # how the result was made: settings, index, timings (eval/index_qa.py fills it; {} for older files)
    meta: dict = field(default_factory=dict)

    def score_kinds(self, questions: list[dict]) -> None:
        """Fill ``scores_by_kind`` from the predictions and the questions they answer (matched by id)."""
        kinds = {q["id"]: answer_kind(q["answers"]) for q in questions}
        for mode, rows in self.predictions.items():
            missing = [row["id"] for row in rows if row["id"] not in kinds]
            if missing:
                raise ValueError(f"questions: no question with id {missing[0]!r} (wrong dataset?)")
            by_kind = {}
            for kind in ANSWER_KINDS:
                pairs = [(row["em"], row["f1"]) for row in rows if kinds[row["id"]] == kind]
                if pairs:
                    by_kind[kind] = QAScores.aggregate(pairs).as_dict()
            self.scores_by_kind[mode] = by_kind

    def table(self) -> str:
        w = max([10] + [len(m) + 2 for m in self.scores])  # "fused-extractive" is wider than 10
        lines = [
            f"QA with k={self.k} retrieved passages (recall@k {self.recall_at_k:.3f})",
            f"{'mode':<{w}}{'EM':>8}{'F1':>8}{'n':>6}",
        ]
        for mode, s in self.scores.items():
            lines.append(f"{mode:<{w}}{s['em']:>8.3f}{s['f1']:>8.3f}{s['n']:>6}")
        kinds = [k for k in ANSWER_KINDS if any(k in by_kind for by_kind in self.scores_by_kind.values())]
        if kinds:
            lines.append(
                "EM by answer kind (n): "
                + ", ".join(
                    f"{k} ({next(b[k]['n'] for b in self.scores_by_kind.values() if k in b)})" for k in kinds
                )
            )
            lines.append(f"{'mode':<{w}}" + "".join(f"{k:>8}" for k in kinds))
            for mode, by_kind in self.scores_by_kind.items():
                cells = "".join(f"{by_kind[k]['em']:>8.3f}" if k in by_kind else f"{'-':>8}" for k in kinds)
                lines.append(f"{mode:<{w}}{cells}")
        return "\n".join(lines)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> QAResult:
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                k=data["k"],
                recall_at_k=data["recall_at_k"],
                scores=data["scores"],
                predictions=data.get("predictions", {}),
                scores_by_kind=data.get("scores_by_kind", {}),
                meta=data.get("meta", {}),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}: not a saved QA result ({exc}); write one with `ragcompress eval qa --out`"
            ) from exc


def compare_qa(a: QAResult, b: QAResult, mode: str = "fused", names: tuple[str, str] = ("a", "b")) -> dict:
    """Question by question, which answers of ``mode`` only A or only B gets right (exact match).

    The p-value is the exact two-sided sign test over the questions where the two differ (McNemar's
    exact test): the chance of a split at least this uneven if neither model were better.
    """
    rows = {}
    for key, name, result in zip("ab", names, (a, b)):
        if not result.predictions.get(mode):
            raise ValueError(
                f"{name}: no {mode!r} predictions; evaluate it with that mode and keep its predictions"
            )
        rows[key] = {row["id"]: row["em"] >= 1.0 for row in result.predictions[mode]}
    if rows["a"].keys() != rows["b"].keys():
        raise ValueError("the two results answered different questions; evaluate both on the same set")
    ids = rows["a"].keys()
    only_a = sum(rows["a"][i] and not rows["b"][i] for i in ids)
    only_b = sum(rows["b"][i] and not rows["a"][i] for i in ids)
    both = sum(rows["a"][i] and rows["b"][i] for i in ids)
    differ = only_a + only_b
    tail = sum(math.comb(differ, j) for j in range(min(only_a, only_b) + 1)) / 2**differ  # 1.0 if none differ
    return {
        "mode": mode,
        # which run of each file was compared: a sweep's file stands for one of its runs (qa_report.primary)
        "run_a": _run_label(a),
        "run_b": _run_label(b),
        "questions": len(ids),
        "em_a": sum(rows["a"].values()) / len(ids),
        "em_b": sum(rows["b"].values()) / len(ids),
        "both": both,
        "only_a": only_a,
        "only_b": only_b,
        "neither": len(ids) - both - differ,
        "p_value": min(1.0, 2 * tail),
    }


def _run_label(result: QAResult) -> str:
    """``k = 5, fp16 vectors`` (the vector dtype only where the result records it)."""
    dtype = result.meta.get("vector_dtype")
    return f"k = {result.k}" + (f", {dtype} vectors" if dtype else "")
