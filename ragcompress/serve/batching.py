"""One worker thread that owns the Retriever and answers queued requests, batching those that arrive together.

The HTTP handlers never touch the models or the store: they put a job on a small bounded queue and wait
for its future. The worker takes the first job, waits up to ``window`` seconds for more (at most
``max_batch`` in all), and answers every group of questions that asked for the same options with one
``Retriever.answer_batch`` call; searches go through one ``search_batch`` per ``k``; a streamed answer
runs on its own. One thread because the models and the store's SQLite connection belong to one thread,
and because two generations at once on the same cores are slower than one after the other.

The store already follows the index: every read pins the newest committed generation, so an update that
commits between two requests is seen by the next one. When the index is rebuilt with other models
(``StoreRebuiltError``) the worker opens it again with ``open_retriever`` and retries the request once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ragcompress.defaults import dtype_name
from ragcompress.modeling.step_compile import COMPILE_SETTINGS
from ragcompress.retrieval import Answer, Retriever
from ragcompress.serve import DEFAULT_MAX_BATCH, DEFAULT_QUEUE_SIZE, DEFAULT_WINDOW_S
from ragcompress.store import StoreRebuiltError

log = logging.getLogger("ragcompress.serve")


class ServerBusyError(Exception):
    """The queue is full: the caller should retry later."""


class ServerStoppedError(Exception):
    """The worker is not running (it failed to start or was closed)."""


@dataclass(frozen=True)
class AnswerOptions:
    """What a question is answered with; requests with equal options share one ``answer_batch`` call."""

    k: int = 5
    mode: str = "fused"
    extractive: bool = False
    rerank: str | None = None
    rerank_candidates: int | None = None
    max_new_tokens: int = 64

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``Retriever.answer`` / ``answer_batch`` / ``stream``."""
        options: dict[str, Any] = dict(
            k=self.k,
            mode=self.mode,
            rerank=self.rerank,
            rerank_candidates=self.rerank_candidates,
            max_new_tokens=self.max_new_tokens,
        )
        if self.extractive:
            options["extractive"] = True
        return options


@dataclass
class _Job:
    kind: str  # "answer", "search" or "stream"
    text: str
    options: AnswerOptions
    future: Future = field(default_factory=Future)
    emit: Callable[[Any], None] | None = None  # stream jobs: receives the AnswerStream, then each piece


_STOP = object()


class Batcher:
    """Owns a Retriever in a worker thread and serves `answer`, `search` and `stream` requests from a queue.

    ``open_retriever`` is called in the worker thread (at start and after a rebuild with other models).
    `start` returns once the models are loaded and re-raises what went wrong if they could not be.
    """

    def __init__(
        self,
        open_retriever: Callable[[], Retriever],
        max_batch: int = DEFAULT_MAX_BATCH,
        window: float = DEFAULT_WINDOW_S,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch={max_batch} must be ≥ 1")
        if window < 0:
            raise ValueError(f"window={window} must be ≥ 0 seconds")
        self._open = open_retriever
        self.max_batch = max_batch
        self.window = window
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._loop, name="ragcompress-serve", daemon=True)
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._retriever: Retriever | None = None
        self.generation: int | None = None  # the index generation the last request read
        self.search_route: str | None = None  # where its search ran (Store.last_search_route)
        self.batches = 0  # answer_batch calls made, and how many questions they held
        self.batched_questions = 0
        self.index_dir = None
        self.compressor_id = self.embedder_id = None
        self.device = self.dtype = None  # where and in what the compressor answers, as names
        self.compile_decode = None  # the decode step's compilation, as --compile-decode names it

    # ---- life cycle --------------------------------------------------------------------------------
    def start(self) -> Batcher:
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def __enter__(self) -> Batcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self._startup_error is None

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    # ---- requests (any thread) ---------------------------------------------------------------------
    def answer(self, question: str, options: AnswerOptions) -> Future:
        """A future of the ``Answer``, equal to ``Retriever.answer(question, **options.kwargs())``."""
        return self._submit(_Job("answer", question, options))

    def search(self, query: str, k: int) -> Future:
        """A future of the passages ``Retriever.search(query, k)`` returns."""
        return self._submit(_Job("search", query, AnswerOptions(k=k)))

    def stream(self, question: str, options: AnswerOptions, emit: Callable[[Any], None]) -> Future:
        """A future of the ``Answer``; ``emit`` is called in the worker thread with the ``AnswerStream``
        (passages and note known, nothing generated yet) and then with each text piece."""
        return self._submit(_Job("stream", question, options, emit=emit))

    def _submit(self, job: _Job) -> Future:
        if not self.running:
            raise ServerStoppedError("the answering worker is not running")
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise ServerBusyError(
                f"{self._queue.maxsize} requests are already waiting; retry later"
            ) from None
        return job.future

    # ---- the worker thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            self._set_retriever(self._open())
            self.generation = self._read_generation()
        except BaseException as error:  # re-raised by start() in the caller's thread
            self._startup_error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                job = self._queue.get()
                if job is _STOP:
                    break
                jobs, stop = self._gather(job)
                self._serve(jobs)
                if stop:
                    break
        finally:
            self._fail_waiting()
            self._retriever.close()

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """``first`` and whatever else arrives within the window, up to ``max_batch`` jobs."""
        jobs = [first]
        deadline = time.monotonic() + self.window
        while len(jobs) < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                job = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _serve(self, jobs: list[_Job]) -> None:
        # A future its waiter has given up on (client gone) is dropped here, before any work is done.
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        groups: dict[tuple[str, AnswerOptions], list[_Job]] = defaultdict(list)
        for job in live:
            if job.kind != "stream":
                key = (job.kind, AnswerOptions(k=job.options.k) if job.kind == "search" else job.options)
                groups[key].append(job)
        for (kind, options), members in groups.items():
            texts = [job.text for job in members]
            if kind == "search":
                self._settle(members, lambda r, t=texts, k=options.k: r.search_batch(t, k))
            else:
                self._settle(members, lambda r, t=texts, o=options: self._answer_batch(r, t, o))
        for job in live:
            if job.kind == "stream":
                self._settle([job], lambda r, j=job: self._stream(r, j))

    def _answer_batch(
        self, retriever: Retriever, questions: list[str], options: AnswerOptions
    ) -> list[Answer]:
        answers = retriever.answer_batch(questions, batch_size=len(questions), **options.kwargs())
        self.batches += 1
        self.batched_questions += len(questions)
        return answers

    def _stream(self, retriever: Retriever, job: _Job) -> list[Answer]:
        pieces = retriever.stream(job.text, **job.options.kwargs())
        job.emit(pieces)
        for piece in pieces:
            job.emit(piece)
        return [pieces.answer]

    def _settle(self, jobs: list[_Job], run: Callable[[Retriever], list]) -> None:
        """Run ``run`` on the retriever (once more on a reopened one after a rebuild) and settle each future
        with its result, or all of them with the error."""
        try:
            try:
                results = run(self._retriever)
            except StoreRebuiltError as error:
                log.info("%s: opening the index again", error)
                self._retriever.close()
                self._set_retriever(self._open())
                results = run(self._retriever)
        except Exception as error:
            for job in jobs:
                job.future.set_exception(error)
            return
        # Before anyone is answered: a client that reads /health after its answer sees at least the
        # generation that answer was read from.
        self.generation = self._read_generation()
        self.search_route = self._retriever.store.last_search_route
        for job, result in zip(jobs, results):
            job.future.set_result(result)

    def _set_retriever(self, retriever: Retriever) -> None:
        self._retriever = retriever
        self.index_dir = retriever.index_dir
        self.compressor_id = retriever.store.manifest.compressor.id
        self.embedder_id = retriever.store.manifest.embedder.id
        self.device, self.dtype = str(retriever.device), dtype_name(retriever.dtype)
        self.compile_decode = next(k for k, v in COMPILE_SETTINGS.items() if v == retriever.compile_decode)

    def _read_generation(self) -> int | None:
        try:
            with self._retriever.store.snapshot() as generation:
                return generation
        except Exception:  # a store mid-rebuild: the next request says what is wrong
            return self.generation

    def _fail_waiting(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not _STOP and job.future.set_running_or_notify_cancel():
                job.future.set_exception(ServerStoppedError("the server is shutting down"))
