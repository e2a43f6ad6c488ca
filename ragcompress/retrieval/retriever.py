"""``Retriever``: query → passages → answer, over an index built by ``ragcompress index``.

    retriever = Retriever("index/")
    answer = retriever.answer("Who founded Pelville?", k=5, mode="fused")
    print(answer.text, answer.sources)

Generation itself lives in retrieval/generation.py (fused / hybrid / text / none, batched) and retrieval/replug.py,
and retrieval/plan.py runs each question's plan through them; this class retrieves, re-ranks, fetches the
stored summary vectors, times each stage and packages the result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ragcompress.compressor import Compressor
from ragcompress.embedder import Embedder
from ragcompress.modeling.step_compile import check_compile
from ragcompress.retrieval.generation import VECTOR_MODES
from ragcompress.retrieval.match import (
    check_compressor,
    check_embedder,
    load_compressor_for,
    load_embedder_for,
)
from ragcompress.retrieval.plan import (
    Plan,
    again_without_held_vectors,
    check_request,
    make_answer,
    plan_for,
    run_plans,
    same_chunk,
    vector_passages,
)
from ragcompress.retrieval.rerank import RERANKERS
from ragcompress.retrieval.rerank import rerank as rerank_passages
from ragcompress.retrieval.scoring import score_plan
from ragcompress.retrieval.streaming import AnswerStream
from ragcompress.retrieval.timing import stopwatch
from ragcompress.retrieval.types import MODES, Answer, Passage, ScoreResult
from ragcompress.store import Store, StoreChangedError, device_vectors

STAGES = ("retrieve", "rerank", "fuse", "prefill", "decode")
WARM_UP_BATCHES = (1, 2)  # warm_up's batch sizes: batch 1 and larger batches compile apart (fast_decode)


class Retriever:
    """Answers questions from an index of summary vectors.

    Args:
        index_dir: a store directory written by ``ragcompress index``.
        model: the compressor. ``None`` loads the one the index names (the embedded default for an
            index built with defaults); a spec (``"default"``, ``"base"``, adapter dir, model dir or HF
            id); a loaded ``Compressor``; or ``(model, tokenizer)`` / ``(model, tokenizer, info)``.
        embedder: the sentence embedder. ``None`` loads the one the index names; a spec; a loaded
            ``Embedder`` or SentenceTransformer; or ``(SentenceTransformer, id)``.
        device: where to load models (default: CUDA when available). Loaded objects stay where they are.
        compile_decode: the default of every answer's ``compile_decode`` (False, True, ``"dynamic"`` or
            ``"regional"``): the fast decode step through ``torch.compile`` (modeling/fast_decode.py).
            ``"dynamic"`` costs two compilations of the whole step per process, paid by the first batch-1
            and the first larger-batch answer; worth it for a process that answers many questions on a GPU
            (``ragcompress serve``). ``"regional"`` compiles one decoder layer and runs it for all.
        gpu_search: search on the embedder's GPU: flat indexes in torch over a copy of the index's
            vectors (4 bytes × dimension per chunk, at most a quarter of the free GPU memory), trained IVF
            ones through GPU FAISS when installed, with the CPU search's hits. False keeps FAISS on the CPU.
        gpu_vectors: keep the index's summary vectors on the GPU the compressor runs on, in its dtype,
            each shard from its first read (``warm_up`` reads them all), so a fused answer slices them
            there instead of moving them from the host: at most a quarter of the free GPU memory, shards
            beyond it are read from the host per answer; an answer that runs out of GPU memory frees
            them and runs again. False reads them from the host every time.

    Raises ``ModelMismatchError`` (one line, both sides named) when a model is not the index's, and
    ``ModelLoadError`` (one line) when a spec cannot be loaded.
    """

    def __init__(
        self,
        index_dir: str | Path,
        model: Any = None,
        embedder: Any = None,
        device=None,
        compile_decode: bool | str = False,
        gpu_search: bool = True,
        gpu_vectors: bool = True,
    ) -> None:
        check_compile(compile_decode, "compile_decode")
        self.compile_decode = compile_decode
        self.gpu_search = gpu_search
        self.index_dir = Path(index_dir).expanduser()
        self.store = Store.open(self.index_dir)
        manifest = self.store.manifest
        try:
            self.compressor: Compressor = load_compressor_for(model, manifest, self.index_dir, device)
            check_compressor(self.compressor, manifest, self.index_dir)
            self.embedder: Embedder = load_embedder_for(embedder, manifest, device)
            check_embedder(self.embedder, manifest, self.index_dir)
        except BaseException:
            self.store.close()
            raise
        self.compressor.model.eval()
        if gpu_vectors and self.device.type in device_vectors.DEVICE_VECTOR_TYPES:
            self.store.hold_vectors(self.device, self.dtype)

    # the compressor's parts, for callers that work with the model directly
    @property
    def model(self):
        return self.compressor.model

    @property
    def tokenizer(self):
        return self.compressor.tokenizer

    @property
    def device(self) -> torch.device:
        return self.compressor.device

    @property
    def dtype(self) -> torch.dtype:
        return self.compressor.dtype

    @property
    def search_device(self) -> torch.device | None:
        """Where FAISS-flat searches run besides the CPU: the embedder's device (None: the CPU)."""
        return self.embedder.device if self.gpu_search else None

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- retrieval ---------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5) -> list[Passage]:
        """The ``k`` most relevant passages, most relevant first (fewer if the index holds fewer)."""
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int = 5) -> list[list[Passage]]:
        """`search` for several queries, embedded in one batch."""
        if k < 0:
            raise ValueError(f"k={k} must be ≥ 0")
        if k == 0 or not queries:
            return [[] for _ in queries]
        embeddings = self.embedder.encode(queries)
        # FAISS and the chunk rows of one committed generation: a commit in between cannot drop a hit.
        return self.store.read_consistent(lambda: self._passages(embeddings, k))

    def _passages(self, embeddings, k: int) -> list[list[Passage]]:
        hits = self.store.search_batch(embeddings, k, self.search_device)
        wanted = sorted({h.chunk_id for row in hits for h in row})
        chunks = {c.chunk_id: c for c in self.store.get_chunks(wanted)} if wanted else {}
        return [
            [
                Passage(c.text, c.doc_id, c.chunk_id, c.char_start, c.char_end, h.score)
                for h in row
                for c in [chunks[h.chunk_id]]
            ]
            for row in hits
        ]

    def vectors(self, passages: Sequence[Passage]) -> list[torch.Tensor]:
        """The stored summary vectors of each passage, on the model's device and in its dtype.

        Raises ``StoreChangedError`` for passages that an update or a rebuild of the index removed after
        they were retrieved (``answer`` and friends retrieve and read in one snapshot, so never do)."""
        if not passages:
            return []
        return self.store.read_consistent(lambda: self._vectors(passages))

    def _vectors(self, passages: Sequence[Passage]) -> list[torch.Tensor]:
        ids = [p.chunk_id for p in passages]
        stored = self.store.find_chunks(ids)
        gone = [p.chunk_id for p in passages if not same_chunk(p, stored.get(p.chunk_id))]
        if gone:
            raise StoreChangedError(
                f"{len(gone)} passage(s) (chunk ids {gone[:5]}) are no longer in the index at "
                f"{self.index_dir}: it changed after they were retrieved; search again"
            )
        return self.store.get_vectors(ids, dtype=self.dtype, device=self.device)

    def rerank(self, query: str, passages: Sequence[Passage], method: str = "summary_l2") -> list[Passage]:
        """``passages`` re-ordered best first by ``summary_l2`` or ``upr`` (see retrieval/rerank.py)."""
        return rerank_passages(method, self.compressor, query, passages, self.vectors(passages))

    def _retrieve(
        self,
        queries: Sequence[str],
        k: int,
        rerank_method: str | None,
        rerank_candidates: int | None,
        timings: dict[str, float],
    ) -> list[list[Passage]]:
        """The passages of each query, best first: the top ``k`` (after re-ranking a larger pool)."""
        pool = k if rerank_method is None else max(k, rerank_candidates or k)
        with stopwatch(timings, "retrieve"):
            found = self.search_batch(queries, pool)
        if rerank_method is not None:
            with stopwatch(timings, "rerank"):
                found = [self.rerank(q, ps, rerank_method)[:k] for q, ps in zip(queries, found)]
        return found

    def _plan(
        self,
        queries: Sequence[str],
        k: int,
        mode: str,
        rerank_method: str | None,
        rerank_candidates: int | None,
        timings: dict[str, float],
    ) -> list[Plan]:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is unknown; use one of {MODES}")
        if rerank_method is not None and rerank_method not in RERANKERS:
            raise ValueError(f"rerank={rerank_method!r} is unknown; use one of {RERANKERS} or None")
        if mode == "none":
            return [Plan(q, "none", []) for q in queries]
        found = self._retrieve(queries, k, rerank_method, rerank_candidates, timings)
        return [plan_for(query, passages, k, mode) for query, passages in zip(queries, found)]

    def _prepare(self, queries, k, mode, rerank_method, rerank_candidates, timings):
        """Plans and their summary vectors, read from one committed generation of the index (started over
        if a writer deletes files of that generation meanwhile)."""

        def read():
            plans = self._plan(queries, k, mode, rerank_method, rerank_candidates, timings)
            return plans, self._fetch(plans, timings)

        return self.store.read_consistent(read)

    # ---- generation --------------------------------------------------------------------------------
    def _fetch(self, plans: Sequence[Plan], timings: dict[str, float]) -> list[list[torch.Tensor] | None]:
        """The summary vectors each plan reads, in feed order: all its passages' for ``fused``, all but
        the last (most relevant, read as text) for ``hybrid``, None for other modes.

        Done in the caller's thread: the store's SQLite connection may not move to a streaming worker.
        """
        wanted = {i: vector_passages(plan) for i, plan in enumerate(plans) if plan.mode in VECTOR_MODES}
        vectors: list[list[torch.Tensor] | None] = [None] * len(plans)
        with stopwatch(timings, "fuse"):
            flat = iter(self.vectors([p for group in wanted.values() for p in group]))
            for i, group in wanted.items():
                vectors[i] = [next(flat) for _ in group]
        return vectors

    def answer(
        self,
        query: str,
        k: int = 5,
        mode: str = "fused",
        rerank: str | None = None,
        rerank_candidates: int | None = None,
        max_new_tokens: int = 64,
        **generate_kwargs,
    ) -> Answer:
        """Answer ``query`` from its ``k`` best passages.

        Args:
            mode: ``fused`` (summary vectors, least → most relevant, as one soft prompt), ``hybrid``
                (the best passage as text after the other k − 1 passages' summary vectors), ``text``
                (passages as plain text), ``replug`` (one pass per passage, ensembled), ``none``.
            rerank: ``None``, ``"summary_l2"`` or ``"upr"``: re-order the retrieved passages first.
            rerank_candidates: retrieve this many (≥ k) and keep the ``k`` best after re-ranking.
            generate_kwargs: passed to ``generate`` (greedy by default; e.g. ``do_sample=True``,
                ``num_beams=4``). REPLUG takes ``do_sample``, ``temperature``, ``top_k`` only.
                ``extractive=True`` (``fused``, ``hybrid`` and ``text``) restricts the answer to a span of the
                retrieved passages' text (retrieval/extractive.py): no blurred names, no invented
                figures, but no paraphrase either.
        """
        return self._answer([query], k, mode, rerank, rerank_candidates, 1, max_new_tokens, generate_kwargs)[
            0
        ]

    def answer_batch(
        self,
        queries: Sequence[str],
        k: int = 5,
        mode: str = "fused",
        rerank: str | None = None,
        rerank_candidates: int | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 64,
        **generate_kwargs,
    ) -> list[Answer]:
        """`answer` for many queries, generated ``batch_size`` at a time. Each Answer's ``timings`` are
        those of the whole call (the stages run batched)."""
        return self._answer(
            list(queries), k, mode, rerank, rerank_candidates, batch_size, max_new_tokens, generate_kwargs
        )

    def _answer(
        self, queries, k, mode, rerank_method, rerank_candidates, batch_size, max_new_tokens, generate_kwargs
    ) -> list[Answer]:
        check_request(queries, mode, max_new_tokens, generate_kwargs)
        started = time.perf_counter()
        timings = dict.fromkeys(STAGES, 0.0)
        plans, vectors = self._prepare(queries, k, mode, rerank_method, rerank_candidates, timings)

        def generate():
            return run_plans(
                self.compressor,
                plans,
                vectors,
                batch_size,
                max_new_tokens,
                timings,
                self.compile_decode,
                **generate_kwargs,
            )

        outputs = again_without_held_vectors(generate, self.store)
        timings["total"] = time.perf_counter() - started
        return [make_answer(plan, output, timings) for plan, output in zip(plans, outputs)]

    def stream(
        self,
        query: str,
        k: int = 5,
        mode: str = "fused",
        rerank: str | None = None,
        rerank_candidates: int | None = None,
        max_new_tokens: int = 64,
        **generate_kwargs,
    ) -> AnswerStream:
        """Like `answer`, but iterate over the result to get text pieces as they are generated::

            stream = retriever.stream("question")
            for piece in stream:
                print(piece, end="", flush=True)
            stream.answer  # the full Answer, once the iteration has finished

        Retrieval happens here, so ``stream.passages`` and ``stream.note`` are available before
        iterating. Beam search cannot stream (HF ``generate`` refuses streamers with beams).
        """
        from transformers import TextIteratorStreamer

        check_request([query], mode, max_new_tokens, generate_kwargs)
        started = time.perf_counter()
        timings = dict.fromkeys(STAGES, 0.0)
        plans, vectors = self._prepare([query], k, mode, rerank, rerank_candidates, timings)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        def run() -> Answer:  # in the worker thread: no store access from here on
            output = run_plans(
                self.compressor,
                plans,
                vectors,
                1,
                max_new_tokens,
                timings,
                self.compile_decode,
                streamer=streamer,
                **generate_kwargs,
            )[0]
            timings["total"] = time.perf_counter() - started
            return make_answer(plans[0], output, timings)

        plan = plans[0]
        return AnswerStream(plan.query, plan.mode, plan.passages, plan.note, streamer, run)

    def warm_up(self, batches: Sequence[int] = WARM_UP_BATCHES, k: int = 5) -> float:
        """Answer throw-away fused questions at these batch sizes, so that on a GPU the decode step's
        compilation (``compile_decode``) and first CUDA-graph captures happen now rather than in the first
        real answers, and capture the question embedder's graphs for questions of up to 64 tokens; with
        ``gpu_vectors``, move the index's summary vectors to the GPU first. The seconds it took."""
        started = time.perf_counter()
        self.store.preload_vectors()
        for batch in batches:
            self.answer_batch(["warm-up"] * batch, k=k, batch_size=batch, max_new_tokens=2)
        self.embedder.warm_up(batches)
        return time.perf_counter() - started

    # ---- scoring -----------------------------------------------------------------------------------
    def score(
        self,
        continuation: str,
        context_query: str,
        mode: str = "fused",
        k: int = 5,
        smoothing: float | None = None,
        rerank: str | None = None,
        rerank_candidates: int | None = None,
        include_query: bool = True,
    ) -> ScoreResult:
        """Log-likelihood of ``continuation`` after ``context_query`` given the passages retrieved for
        ``context_query`` (see retrieval/scoring.py for what each mode reads).

        ``continuation`` is tokenized on its own, so include its leading space when it continues a
        word sequence. ``smoothing=0.5`` mixes every token's probability 50/50 with the no-retrieval
        one (the paper's retrieval-augmented LM evaluation). ``include_query=False`` scores the
        continuation after the retrieved context only.
        """
        plans, vectors = self._prepare([context_query], k, mode, rerank, rerank_candidates, {})
        return score_plan(self.compressor, plans[0], vectors[0], continuation, smoothing, include_query)
