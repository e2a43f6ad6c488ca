"""Answer questions from passages in one of four ways, batched: the core under `Retriever.answer`.

* ``fused``: the summary vectors of the k passages, concatenated least → most relevant (so the best
  passage sits next to the prompt), form one soft prompt in front of the question; one generation.
* ``hybrid``: the most relevant passage as plain text in the prompt, the other k − 1 as fused summary
  vectors (least → most relevant) in front of it; one generation. It costs one passage of prompt tokens
  plus (k − 1)·κ soft-prompt slots; with k = 1 it is ``text``.
* ``text``: the passages as plain text in the prompt (the uncompressed baseline).
* ``none``: the question alone (no retrieval).
(``replug`` ensembles one pass per passage; it lives in retrieval/replug.py.)

``extractive=True`` restricts ``fused``, ``hybrid`` and ``text`` answers to spans of the passages' text
(all k of them; retrieval/extractive.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ragcompress.modeling import compress, unwrap
from ragcompress.modeling.fast_decode import fast_generate, unsupported_reason
from ragcompress.modeling.step_compile import check_compile
from ragcompress.prompting import join_passages, question_prompt_ids
from ragcompress.retrieval.extractive import SPAN_MODES, PassageSpanConstraint
from ragcompress.retrieval.types import MODES as ANSWER_MODES

MODES = tuple(m for m in ANSWER_MODES if m != "replug")  # replug lives in retrieval/replug.py
VECTOR_MODES = ("fused", "hybrid")  # the modes that read summary vectors
logger = logging.getLogger(__name__)
_FALLBACKS_LOGGED: set[str] = set()


@dataclass
class GenerationOutput:
    """One generated answer with its token counts (what `Retriever.answer` reports)."""

    text: str
    prompt_tokens: int
    softprompt_slots: int
    generated_tokens: int  # new tokens up to and including the first end-of-sequence token


def left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    both = torch.stack([ids, mask]).to(device)  # one copy to the device
    return both[0], both[1]


def fuse(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One soft prompt from per-passage summary vectors, in the order given (least → most relevant)."""
    return torch.cat(list(vectors), dim=0)


def prompt_rows(
    tokenizer, questions: Sequence[str], passages: Sequence[Sequence[str]] | None, mode: str
) -> list[list[int]]:
    """Prompt token ids per question: all passages as text in ``text`` mode, the last (most relevant) one
    in ``hybrid`` mode, none otherwise."""
    if mode == "text":
        return [
            question_prompt_ids(tokenizer, q, join_passages(list(p))) for q, p in zip(questions, passages)
        ]
    if mode == "hybrid":
        return [
            question_prompt_ids(tokenizer, q, join_passages(list(p)[-1:]))
            for q, p in zip(questions, passages)
        ]
    return [question_prompt_ids(tokenizer, q) for q in questions]


def generate_answers(
    model,
    tokenizer,
    questions: Sequence[str],
    passages: Sequence[Sequence[str]] | None = None,
    mode: str = "fused",
    passage_vectors: Sequence[Sequence[torch.Tensor]] | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 32,
    extractive: bool = False,
    **generate_kwargs,
) -> list[str]:
    """Generated answer text per question (special tokens removed); see `generate_outputs`."""
    outputs = generate_outputs(
        model,
        tokenizer,
        questions,
        passages,
        mode,
        passage_vectors,
        batch_size,
        max_new_tokens,
        extractive,
        **generate_kwargs,
    )
    return [o.text for o in outputs]


@torch.inference_mode()
def generate_outputs(
    model,
    tokenizer,
    questions: Sequence[str],
    passages: Sequence[Sequence[str]] | None = None,
    mode: str = "fused",
    passage_vectors: Sequence[Sequence[torch.Tensor]] | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 32,
    extractive: bool = False,
    **generate_kwargs,
) -> list[GenerationOutput]:
    """Generated answer (text and token counts) per question, special tokens removed from the text.

    For ``fused`` pass either ``passage_vectors`` (precomputed summary vectors, e.g. from the store) or
    ``passages`` (compressed here with `compress`). ``hybrid`` needs ``passages`` (least → most relevant;
    the last one is read as text) and takes ``passage_vectors`` of all passages but the last (compressed
    here when not given). Generation arguments pass through to ``generate``
    (greedy by default). ``extractive`` restricts each answer to a span of its passages' text
    (`PassageSpanConstraint`), which needs ``passages`` and a mode that has them. ``fast_decode`` (None:
    on a GPU where it applies; True; False) picks `fast_generate` over ``generate``, and
    ``compile_decode`` (False, True, "dynamic" or "regional") is its ``compile`` (ignored when ``generate`` decodes).
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is unknown; use one of {MODES}")
    if mode in ("fused", "text") and passages is None and passage_vectors is None:
        raise ValueError(f"mode {mode!r} needs passages")
    if mode == "hybrid":
        _check_hybrid(passages, passage_vectors)
    if extractive and (mode not in SPAN_MODES or passages is None):
        raise ValueError(
            f"extractive=True needs the passages' text: pass passages= and use mode {', '.join(SPAN_MODES)}"
        )
    core = unwrap(model)
    device = core.embed_summary.weight.device
    if mode in VECTOR_MODES and passage_vectors is None:
        groups = [list(g)[:-1] if mode == "hybrid" else list(g) for g in passages]
        flat = [p for group in groups for p in group]
        vectors = compress(model, tokenizer, flat, batch_size=batch_size, to_cpu=False) if flat else []
        it = iter(vectors)
        passage_vectors = [[next(it) for _ in group] for group in groups]
    rows = prompt_rows(tokenizer, questions, passages, mode)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs = {
        "do_sample": False,
        "max_new_tokens": max_new_tokens,
        "pad_token_id": pad_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    fast = generate_kwargs.pop("fast_decode", None)
    compiled = generate_kwargs.pop("compile_decode", False)
    check_compile(compiled, "compile_decode")
    kwargs.update(generate_kwargs)
    kwargs["fast_decode"] = _decode_fast(model, device, kwargs, extractive, fast)
    if kwargs["fast_decode"]:
        kwargs["compile"] = compiled  # fast_generate's; generate has no such argument
    answers: list[GenerationOutput | None] = [None] * len(questions)
    order = list(range(len(questions)))
    if mode in VECTOR_MODES:  # rows in a batch must share the soft-prompt width
        order.sort(key=lambda i: sum(v.shape[0] for v in passage_vectors[i]))
    for first in range(0, len(order), batch_size):
        batch = order[first : first + batch_size]
        if mode in VECTOR_MODES:
            widths = {sum(v.shape[0] for v in passage_vectors[i]) for i in batch}
            if len(widths) > 1:  # rare (multi-step chunks, fewer passages): fall back to one-by-one
                for i in batch:
                    spans = [passages[i]] if extractive else None
                    one = [passage_vectors[i]] if passage_vectors[i] else None
                    answers[i] = _generate(model, tokenizer, [rows[i]], one, pad_id, device, kwargs, spans)[0]
                continue
            # hybrid with one passage has no vectors: it is text mode with k = 1
            vectors = [passage_vectors[i] for i in batch] if widths != {0} else None
        else:
            vectors = None
        spans = [passages[i] for i in batch] if extractive else None
        for i, output in zip(
            batch,
            _generate(model, tokenizer, [rows[i] for i in batch], vectors, pad_id, device, kwargs, spans),
        ):
            answers[i] = output
    return answers  # type: ignore[return-value]


def _check_hybrid(passages, passage_vectors) -> None:
    """``hybrid`` reads the last passage as text and the vectors of all the others (one clear line)."""
    if passages is None or any(len(group) == 0 for group in passages):
        raise ValueError("mode 'hybrid' needs passages (at least one per question; the last is read as text)")
    if passage_vectors is None:
        return
    if len(passage_vectors) != len(passages) or any(
        len(v) != len(p) - 1 for v, p in zip(passage_vectors, passages)
    ):
        raise ValueError(
            "mode 'hybrid' takes passage_vectors of every passage but the last (k − 1 per question)"
        )


def _generate(model, tokenizer, rows, vectors, pad_id, device, kwargs, spans=None) -> list[GenerationOutput]:
    ids, mask = left_pad(rows, pad_id, device)
    eos = kwargs.get("eos_token_id")
    eos = set() if eos is None else {eos} if isinstance(eos, int) else set(eos)
    if spans is not None:
        from transformers import LogitsProcessorList

        constraint = PassageSpanConstraint(tokenizer, spans, ids.shape[1], sorted(eos))
        kwargs = {
            **kwargs,
            "logits_processor": LogitsProcessorList([*kwargs.get("logits_processor", []), constraint]),
        }
    kwargs = dict(kwargs)
    fast = kwargs.pop("fast_decode", False)
    softprompt = None
    if vectors is not None:
        dtype = unwrap(model).embed_summary.weight.dtype
        softprompt = torch.stack([fuse(v) for v in vectors]).to(device=device, dtype=dtype)
        if softprompt.shape[1] == 0:
            softprompt = None
    _check_length(model, ids.shape[1], 0 if softprompt is None else softprompt.shape[1], kwargs)
    if fast:
        out = fast_generate(model, ids, mask, softprompt, **kwargs)
    else:
        out = model.generate(input_ids=ids, attention_mask=mask, softprompt=softprompt, **kwargs)
    new = out[:, ids.shape[1] :].tolist()  # one copy from the device
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    slots = 0 if softprompt is None else softprompt.shape[1]
    outputs = []
    for row, text, generated in zip(rows, texts, new):
        # rows that finished early are padded (often with EOS itself): count up to the first EOS
        ends = [i for i, token in enumerate(generated) if token in eos]
        count = ends[0] + 1 if ends else len(generated)
        outputs.append(GenerationOutput(text, len(row), slots, count))
    return outputs


def _check_length(model, tokens: int, slots: int, kwargs) -> None:
    """Refuse (one line) a prompt that, with its answer, runs past the positions the model was trained on:
    past them a rotary model answers garbage and a learned-position one fails on the device."""
    core = unwrap(model)
    limit = getattr(core.config, "max_position_embeddings", None)
    new = kwargs.get("max_new_tokens") or 0
    if getattr(core, "position_style", "consecutive") != "consecutive":
        slots = 0  # OPT-style: soft-prompt slots share one position and text counts from 0 (positions.py)
    if limit and tokens + slots + new > limit:
        raise ValueError(
            f"the prompt takes {tokens} tokens and {slots} soft-prompt positions, and with {new} new tokens runs "
            f"past the {limit} positions the model reads; shorten the question, lower k or max_new_tokens"
        )


def _decode_fast(model, device, kwargs, extractive: bool, wanted: bool | None) -> bool:
    """Whether to decode through `fast_generate`; see `generate_outputs`'s ``fast_decode``."""
    if wanted is False or (wanted is None and torch.device(device).type != "cuda"):
        return False
    if extractive:
        reason = "extractive answers constrain each token with a logits processor"
    else:
        reason = unsupported_reason(model, kwargs)
    if reason is None:
        return True
    if wanted:
        raise ValueError(f"fast_decode=True cannot run here: {reason}; pass fast_decode=None or False")
    if reason not in _FALLBACKS_LOGGED:
        _FALLBACKS_LOGGED.add(reason)
        logger.warning("decoding through generate, not the fast path: %s", reason)
    return False
