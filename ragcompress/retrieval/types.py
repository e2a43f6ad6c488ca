"""What the Retriever returns: passages, answers and LM scores."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# How an answer reads its passages: summary vectors as one soft prompt, the best passage as text after
# the others' summary vectors (hybrid), plain text, one pass per passage ensembled (REPLUG), or no
# retrieval. The one list of modes (hybrid, the newest, last); generation.py runs all but ``replug``.
MODES = ("fused", "text", "replug", "none", "hybrid")


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk. ``score`` is the retrieval score (higher = more relevant: cosine or inner
    product, as the index's metric says); ``rerank_score`` is set when a re-ranker ordered it."""

    text: str
    doc_id: str
    chunk_id: int
    char_start: int
    char_end: int
    score: float
    rerank_score: float | None = None


@dataclass
class Answer:
    """A generated answer and how it was made.

    ``passages`` are in the order they were fed to the model: least → most relevant for ``fused``,
    ``hybrid`` and ``text`` (the best passage sits next to the question; in ``hybrid`` it is the last
    one, fed as text, the others as summary vectors), best first for ``replug`` (order does not matter
    there). ``timings`` are seconds: ``retrieve`` (embed the query, search, fetch texts),
    ``rerank``, ``fuse`` (fetch and concatenate summary vectors), ``prefill`` (the forward pass over the
    soft prompt and prompt), ``decode`` (every later forward pass) and ``total``. Token counts:
    ``prompt_tokens`` text tokens in the prompt (summed over passes for ``replug``; for ``hybrid`` they
    include the best passage's text), ``softprompt_slots`` summary vectors fed (``hybrid``: those of the
    k − 1 other passages), ``generated_tokens`` new tokens including the end-of-sequence token.
    """

    text: str
    query: str
    mode: str
    passages: list[Passage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    softprompt_slots: int = 0
    generated_tokens: int = 0
    note: str | None = None  # e.g. why the requested mode was not used

    @property
    def sources(self) -> list[str]:
        """Document ids of the passages, most relevant first, without repeats."""
        ordered = self.passages if self.mode == "replug" else list(reversed(self.passages))
        return list(dict.fromkeys(p.doc_id for p in ordered))


@dataclass
class ScoreResult:
    """Log-likelihood (natural log) of a continuation's tokens.

    ``token_logprobs[i]`` is log p(token i | everything before it); with ``smoothing`` = s it is
    log((1 − s)·p_retrieval + s·p_none), and ``components`` holds both sides' per-token values.
    """

    total: float
    token_logprobs: list[float]
    token_ids: list[int]
    mode: str
    passages: list[Passage] = field(default_factory=list)
    smoothing: float | None = None
    components: dict[str, list[float]] = field(default_factory=dict)
    note: str | None = None

    @property
    def mean(self) -> float:
        return self.total / max(len(self.token_logprobs), 1)

    @property
    def perplexity(self) -> float:
        return math.exp(-self.mean)
