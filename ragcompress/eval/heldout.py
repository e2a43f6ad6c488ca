"""Evaluation sets that must never be trained on, and the check that keeps them out of training.

Out-of-distribution numbers only mean something if the model never saw the set. Every question of such
a set (the `synthqa` "ood" style, the real-document set of docs/evaluation-sets.md) carries
``"heldout": "<set name>"``; the stage-2 data loader and `scripts/train_default.py` refuse any QA
directory with such a question. The marker sits on each question, not in a side file, so it survives
copying or filtering `questions.jsonl`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

HELDOUT_FIELD = "heldout"


class HeldOutDataError(ValueError):
    """A held-out evaluation set was given as training data."""


def heldout_tags(questions: Iterable[dict]) -> set[str]:
    """The held-out set names that these questions carry (empty for trainable data)."""
    return {str(q[HELDOUT_FIELD]) for q in questions if isinstance(q, dict) and q.get(HELDOUT_FIELD)}


def refuse_heldout(questions: Iterable[dict], where: str | Path) -> None:
    """Raise `HeldOutDataError` if any question belongs to a held-out evaluation set."""
    tags = heldout_tags(questions)
    if tags:
        raise HeldOutDataError(
            f"{where}: held-out evaluation data ({', '.join(sorted(tags))}) cannot be used for training; "
            "generate training questions with the default synthqa style"
        )


def refuse_heldout_dir(directory: str | Path) -> None:
    """`refuse_heldout` on a dataset directory's questions.jsonl, read line by line (no format checks)."""
    path = Path(directory) / "questions.jsonl"
    if not path.is_file():
        return  # nothing to refuse; the loader reports the missing file in its own words
    with open(path, encoding="utf-8") as f:
        records = (json.loads(line) for line in f if line.strip())
        refuse_heldout(records, directory)
