"""``AnswerStream``: text pieces as they are generated, and the full Answer at the end.

Generation runs in a worker thread and pushes decoded text into a transformers
``TextIteratorStreamer``; the caller's thread reads from it. Under greedy decoding the pieces join to
exactly the text `Retriever.answer` returns, because both decode the same tokens with the same
tokenizer settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from ragcompress.retrieval.types import Answer, Passage


class AnswerStream:
    """Iterate once to receive the answer's text pieces; ``answer`` is set when the iteration ends."""

    def __init__(
        self,
        query: str,
        mode: str,
        passages: list[Passage],
        note: str | None,
        streamer,
        run: Callable[[], Answer],
    ) -> None:
        self.query = query
        self.mode = mode  # the mode actually used (``none`` when nothing was retrieved)
        self.passages = passages  # in feed order, as in Answer
        self.note = note
        self.answer: Answer | None = None
        self._streamer = streamer
        self._run = run
        self._started = False
        self._error: BaseException | None = None

    def _work(self) -> None:
        try:
            self.answer = self._run()
        except BaseException as error:  # re-raised in the reading thread
            self._error = error
            self._streamer.end()  # unblock the reader; generate never reached its own end()

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise RuntimeError("an AnswerStream can be iterated only once")
        self._started = True
        worker = threading.Thread(target=self._work, name="ragcompress-generate", daemon=True)
        worker.start()
        try:
            for piece in self._streamer:
                if piece:
                    yield piece
        finally:
            # also when the caller stops early: generation runs to its end (at most max_new_tokens)
            worker.join()
        if self._error is not None:
            raise self._error

    def text(self) -> str:
        """Consume the stream and return the whole text."""
        return "".join(self)
