"""What one query is answered from (a ``Plan``), how an answer is packaged, and whether a passage is
still the chunk the index holds under its id."""

from __future__ import annotations

from dataclasses import dataclass

from ragcompress.retrieval.generation import GenerationOutput
from ragcompress.retrieval.types import Answer, Passage


@dataclass
class Plan:
    """What one query will be answered from: the mode actually used and the passages in feed order."""

    query: str
    mode: str
    passages: list[Passage]
    note: str | None = None


def plan_for(query: str, passages: list[Passage], k: int, mode: str) -> Plan:
    """The plan for ``query`` in ``mode`` given its retrieved ``passages`` (best first)."""
    if not passages:
        why = "the index is empty" if k > 0 else "k=0"
        return Plan(query, "none", [], f"no passages retrieved ({why}): answered with mode 'none'")
    note = None
    if len(passages) < k:
        note = f"the index holds only {len(passages)} passage(s): used them all instead of k={k}"
    # least → most relevant, so the best passage sits right before the question; REPLUG's ensemble does
    # not depend on order, so it keeps retrieval order.
    fed = passages if mode == "replug" else passages[::-1]
    return Plan(query, mode, fed, note)


def vector_passages(plan: Plan) -> list[Passage]:
    """The passages a plan reads as summary vectors: all of them in ``fused``, all but the last (the
    most relevant, read as text) in ``hybrid``."""
    return plan.passages[:-1] if plan.mode == "hybrid" else plan.passages


def make_answer(plan: Plan, output: GenerationOutput, timings: dict[str, float]) -> Answer:
    return Answer(
        text=output.text,
        query=plan.query,
        mode=plan.mode,
        passages=list(plan.passages),
        timings=dict(timings),
        prompt_tokens=output.prompt_tokens,
        softprompt_slots=output.softprompt_slots,
        generated_tokens=output.generated_tokens,
        note=plan.note,
    )


def same_chunk(passage: Passage, chunk) -> bool:
    """Whether the store's ``chunk`` (or None) is the one ``passage`` was retrieved as. Chunk ids are
    never reused within an index, but a rebuilt index numbers its chunks afresh."""
    return chunk is not None and (chunk.doc_id, chunk.text, chunk.char_start, chunk.char_end) == (
        passage.doc_id,
        passage.text,
        passage.char_start,
        passage.char_end,
    )
