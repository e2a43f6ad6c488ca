"""Re-order retrieved passages with the compressor itself, using the summary vectors already stored.

* ``summary_l2``: compress the query with the same model and rank passages by the ℓ2 distance between
  the mean of the query's summary vectors and the mean of each passage's (closer = more relevant). It
  costs one compression of a short query, which is why the paper calls this re-ordering nearly free.
  Mean pooling makes passages with several compression steps (κ·steps vectors) comparable to the query
  (κ vectors).
* ``upr``: Unsupervised Passage Re-ranking with summary vectors in place of passage text: the average
  log-likelihood of the question's tokens when the model reads the passage's summary vectors, then
  ``"Question:"``. One forward pass per passage, batched; no passage text is re-read.

Both return a permutation of the passages given, best first, with ``rerank_score`` set (higher = more
relevant: −distance for ``summary_l2``, mean log-likelihood for ``upr``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from ragcompress.compressor import Compressor
from ragcompress.retrieval.types import Passage

RERANKERS = ("summary_l2", "upr")
UPR_PREFIX = "Question:"


@torch.inference_mode()
def summary_l2_scores(compressor: Compressor, query: str, vectors: Sequence[torch.Tensor]) -> list[float]:
    """−ℓ2 distance between mean-pooled query and passage summary vectors, per passage."""
    # tokenized like indexed chunks (no special tokens), so query and passages are compressed alike
    query_ids = compressor.tokenizer(query, add_special_tokens=False)["input_ids"]
    if not query_ids:
        return [0.0] * len(vectors)
    query_mean = compressor.compress([query_ids], to_cpu=False)[0].float().mean(0)
    return [-float((v.to(query_mean.device).float().mean(0) - query_mean).norm()) for v in vectors]


@torch.inference_mode()
def upr_scores(
    compressor: Compressor, query: str, vectors: Sequence[torch.Tensor], batch_size: int = 8
) -> list[float]:
    """Mean log p(question tokens | passage summary vectors, "Question:"), per passage."""
    model, tokenizer = compressor.model, compressor.tokenizer
    device, dtype = compressor.device, compressor.dtype
    prefix = tokenizer(UPR_PREFIX, add_special_tokens=False)["input_ids"]
    question = tokenizer(" " + query.strip(), add_special_tokens=False)["input_ids"]
    if not question:
        return [0.0] * len(vectors)
    ids = torch.tensor([prefix + question], device=device)
    targets = ids[:, len(prefix) :]
    scores: list[float] = [0.0] * len(vectors)
    # Rows of one forward must share the soft-prompt width (chunks with several steps have more).
    by_width: dict[int, list[int]] = {}
    for i, v in enumerate(vectors):
        by_width.setdefault(v.shape[0], []).append(i)
    for members in by_width.values():
        for first in range(0, len(members), batch_size):
            batch = members[first : first + batch_size]
            softprompt = torch.stack([vectors[i] for i in batch]).to(device=device, dtype=dtype)
            # logits of the last len(question)+1 positions; the final one predicts past the question
            logits = model(
                input_ids=ids.expand(len(batch), -1),
                softprompt=softprompt,
                logits_to_keep=len(question) + 1,
            ).logits[:, :-1]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            token_logprobs = logprobs.gather(-1, targets.expand(len(batch), -1).unsqueeze(-1)).squeeze(-1)
            for i, value in zip(batch, token_logprobs.mean(-1).tolist()):
                scores[i] = value
    return scores


def rerank(
    method: str,
    compressor: Compressor,
    query: str,
    passages: Sequence[Passage],
    vectors: Sequence[torch.Tensor],
) -> list[Passage]:
    """``passages`` re-ordered by ``method`` (best first), each with its ``rerank_score``."""
    if method not in RERANKERS:
        raise ValueError(f"rerank={method!r} is unknown; use one of {RERANKERS} or None")
    if not passages:
        return []
    if method == "summary_l2":
        scores = summary_l2_scores(compressor, query, vectors)
    else:
        scores = upr_scores(compressor, query, vectors)
    scored = [replace(p, rerank_score=s) for p, s in zip(passages, scores)]
    # a stable sort keeps the retrieval order among equal scores
    return sorted(scored, key=lambda p: -p.rerank_score)
