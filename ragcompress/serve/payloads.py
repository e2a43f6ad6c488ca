"""``Answer`` and ``Passage`` as JSON-ready dicts: what `ragcompress serve` returns and `ask --json` prints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ragcompress.retrieval.types import Answer, Passage


def passage_json(passage: Passage) -> dict[str, Any]:
    return asdict(passage)


def answer_json(answer: Answer) -> dict[str, Any]:
    """The whole ``Answer`` with its ``sources`` (document ids, most relevant first)."""
    return {**asdict(answer), "sources": answer.sources}
