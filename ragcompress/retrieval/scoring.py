"""Log-likelihood of a continuation given retrieved context: the retrieval-augmented LM evaluation.

This is plain language modelling (no chat template, no instructions): the model reads the retrieved
context, then ``context_query`` (the text being continued, also the retrieval query), then the
continuation, whose tokens are scored. Retrieved context per mode:

* ``fused``: the passages' summary vectors (least → most relevant) as a soft prompt;
* ``hybrid``: the summary vectors of all passages but the most relevant as a soft prompt, then the most
  relevant passage as text;
* ``text``: the passages as plain text (least → most relevant);
* ``replug``: one pass per passage (as text), per-token probabilities mixed by softmax(retrieval scores);
* ``none``: nothing.

``smoothing`` = s mixes each token's probability with the no-retrieval one, (1 − s)·p + s·p_none; the
paper's Table 5 used s = ½.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ragcompress.compressor import Compressor
from ragcompress.prompting import join_passages
from ragcompress.retrieval.generation import fuse, left_pad
from ragcompress.retrieval.plan import Plan
from ragcompress.retrieval.replug import ensemble_weights
from ragcompress.retrieval.types import MODES, ScoreResult


def start_token(tokenizer) -> int:
    """The token read before an empty prefix, so the continuation's first token is scored too."""
    for token in (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id):
        if token is not None:
            return int(token)
    return 0


@torch.inference_mode()
def continuation_logprobs(
    compressor: Compressor,
    prefixes: Sequence[Sequence[int]],
    continuation: Sequence[int],
    softprompt: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[rows, len(continuation)]``: log p(continuation token | prefix row, earlier tokens).

    Every prefix must be non-empty (the first continuation token is predicted from its last token);
    ``softprompt`` is ``[slots, width]`` or ``[rows, slots, width]``, read before the prefix.
    """
    if any(len(p) == 0 for p in prefixes):
        raise ValueError("every prefix needs at least one token")
    device, dtype = compressor.device, compressor.dtype
    n = len(continuation)
    if n == 0:
        return torch.zeros(len(prefixes), 0)
    ids, mask = left_pad([list(p) + list(continuation) for p in prefixes], compressor.pad_id, device)
    if softprompt is not None:
        softprompt = softprompt.to(device=device, dtype=dtype)
        if softprompt.dim() == 2:
            softprompt = softprompt.unsqueeze(0).expand(len(prefixes), -1, -1)
    # the last n+1 positions: position j predicts token j+1; the final one predicts past the end
    logits = compressor.model(
        input_ids=ids, attention_mask=mask, softprompt=softprompt, logits_to_keep=n + 1
    ).logits
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    targets = ids[:, -n:].unsqueeze(-1)
    return logprobs.gather(-1, targets).squeeze(-1).cpu()


def mix_logprobs(logprobs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """log Σ_i w_i·p_i per token, from ``[rows, n]`` log-probabilities and ``[rows]`` weights."""
    return torch.logsumexp(logprobs + weights.log().to(logprobs.device)[:, None], dim=0)


def retrieval_logprobs(
    compressor: Compressor,
    mode: str,
    query_ids: list[int],
    continuation: list[int],
    passages: Sequence[str] = (),
    vectors: Sequence[torch.Tensor] = (),
    scores: Sequence[float] = (),
) -> torch.Tensor:
    """``[len(continuation)]`` log-probabilities in one mode. ``passages``/``vectors`` are least → most
    relevant for ``text``/``fused``; ``hybrid`` reads ``passages[-1]`` as text and ``vectors`` of the
    passages before it; ``passages``/``scores`` pair up for ``replug``."""
    prefix = query_ids or [start_token(compressor.tokenizer)]
    without = (mode in ("text", "replug", "hybrid") and not passages) or (mode == "fused" and not vectors)
    if mode == "none" or without:
        return continuation_logprobs(compressor, [prefix], continuation)[0]
    if mode == "fused":
        return continuation_logprobs(compressor, [prefix], continuation, fuse(vectors))[0]

    def with_passages(texts: Sequence[str]) -> list[int]:
        text = join_passages(list(texts)) + "\n\n"
        context = compressor.tokenizer(text, add_special_tokens=False)["input_ids"]
        return context + query_ids

    if mode == "text":
        return continuation_logprobs(compressor, [with_passages(passages)], continuation)[0]
    if mode == "hybrid":
        softprompt = fuse(vectors) if vectors else None
        return continuation_logprobs(compressor, [with_passages(passages[-1:])], continuation, softprompt)[0]
    if mode == "replug":
        rows = [with_passages([p]) for p in passages]
        logprobs = continuation_logprobs(compressor, rows, continuation)
        return mix_logprobs(logprobs, ensemble_weights(scores))
    raise ValueError(f"mode {mode!r} is unknown; use one of {MODES}")


def smooth(retrieval: torch.Tensor, none: torch.Tensor, smoothing: float) -> torch.Tensor:
    """log((1 − s)·p + s·q) per token, computed in log space."""
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing={smoothing} must lie in [0, 1]")
    if smoothing == 0.0:
        return retrieval
    if smoothing == 1.0:
        return none
    stacked = torch.stack([retrieval + math.log(1.0 - smoothing), none + math.log(smoothing)])
    return torch.logsumexp(stacked, dim=0)


def score_plan(
    compressor: Compressor,
    plan: Plan,
    vectors: list[torch.Tensor] | None,
    continuation: str,
    smoothing: float | None = None,
    include_query: bool = True,
) -> ScoreResult:
    """``Retriever.score`` once its plan (query, mode, passages in feed order) and the summary vectors
    that plan reads are known."""
    encode = compressor.tokenizer
    query_ids = encode(plan.query, add_special_tokens=False)["input_ids"] if include_query else []
    continuation_ids = encode(continuation, add_special_tokens=False)["input_ids"]
    logprobs = retrieval_logprobs(
        compressor,
        plan.mode,
        query_ids,
        continuation_ids,
        passages=[p.text for p in plan.passages],
        vectors=vectors or [],
        scores=[p.score for p in plan.passages],
    )
    components: dict[str, list[float]] = {}
    if smoothing is not None:
        without = retrieval_logprobs(compressor, "none", query_ids, continuation_ids)
        components = {"retrieval": logprobs.tolist(), "none": without.tolist()}
        logprobs = smooth(logprobs, without, smoothing)
    return ScoreResult(
        total=float(logprobs.sum()),
        token_logprobs=logprobs.tolist(),
        token_ids=list(continuation_ids),
        mode=plan.mode,
        passages=plan.passages,
        smoothing=smoothing,
        components=components,
        note=plan.note,
    )
