"""What one query is answered from (a ``Plan``), how plans are answered and the answers packaged, and
whether a passage is still the chunk the index holds under its id."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ragcompress.compressor import Compressor
from ragcompress.retrieval.extractive import check_extractive
from ragcompress.retrieval.generation import VECTOR_MODES, GenerationOutput, generate_outputs
from ragcompress.retrieval.replug import replug_generate
from ragcompress.retrieval.timing import ForwardTimer
from ragcompress.retrieval.types import MODES, Answer, Passage

logger = logging.getLogger(__name__)


@dataclass
class Plan:
    """What one query will be answered from: the mode actually used and the passages in feed order."""

    query: str
    mode: str
    passages: list[Passage]
    note: str | None = None


def check_request(queries: Sequence[str], mode: str, max_new_tokens: int, generate_kwargs: dict) -> None:
    """One-line ``ValueError``s, before anything is retrieved, for a request that cannot be answered: an
    empty question, fewer than one new token, ``extractive`` with a mode that has no passages to copy."""
    for i, query in enumerate(queries):
        where = "the question" if len(queries) == 1 else f"question {i}"
        if not isinstance(query, str):
            raise ValueError(f"{where} is a {type(query).__name__}, not a str")
        if not query.strip():
            raise ValueError(f"{where} is empty")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be at least 1")
    check_extractive(mode, generate_kwargs.get("extractive", False))


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


def run_plans(
    compressor: Compressor,
    plans: Sequence[Plan],
    vectors: Sequence[list[torch.Tensor] | None],
    batch_size: int,
    max_new_tokens: int,
    timings: dict[str, float],
    default_compile_decode: bool | str,
    **generate_kwargs,
) -> list[GenerationOutput]:
    """The generation of each plan, in order: the plans of one mode batched together (REPLUG one by one,
    in its own decoding loop), with prefill and decode seconds added to ``timings``. A ``compile_decode``
    in ``generate_kwargs`` wins over ``default_compile_decode``."""
    outputs: list[GenerationOutput | None] = [None] * len(plans)
    extractive = generate_kwargs.pop("extractive", False)
    with ForwardTimer(compressor.model) as timer:
        for mode in MODES:
            members = [i for i, plan in enumerate(plans) if plan.mode == mode]
            if not members:
                continue
            if mode == "replug":  # its own decoding loop: no fast path, nothing to compile
                for i in members:
                    outputs[i] = replug_generate(
                        compressor,
                        plans[i].query,
                        [p.text for p in plans[i].passages],
                        [p.score for p in plans[i].passages],
                        max_new_tokens=max_new_tokens,
                        **generate_kwargs,
                    )
                continue
            results = generate_outputs(
                compressor.model,
                compressor.tokenizer,
                [plans[i].query for i in members],
                passages=[[p.text for p in plans[i].passages] for i in members],
                mode=mode,
                passage_vectors=[vectors[i] for i in members] if mode in VECTOR_MODES else None,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                extractive=extractive and mode != "none",  # a plan without passages answers freely
                **{"compile_decode": default_compile_decode, **generate_kwargs},
            )
            for i, result in zip(members, results):
                outputs[i] = result
    timings["prefill"] += timer.prefill
    timings["decode"] += timer.decode
    return outputs  # type: ignore[return-value]


def again_without_held_vectors(generate, store):
    """``generate()``; when it runs out of GPU memory while ``store`` holds summary vectors on the GPU,
    those are freed (later answers read theirs from disk; this one's were copied out already) and it runs
    once more, with one warning."""
    try:
        return generate()
    except torch.OutOfMemoryError:
        if not store.release_vectors():
            raise
    torch.cuda.empty_cache()
    logger.warning(
        "out of GPU memory while answering: the index's summary vectors are no longer held on the GPU "
        "(each answer reads its own from disk); pass gpu_vectors=False to start that way"
    )
    return generate()


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
