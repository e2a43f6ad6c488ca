"""The write stage of ``index``: apply a read corpus to an open store — plan, chunk, embed and compress
(through the engine), commit — in commit groups.

A commit group is a run of whole documents. Its chunks are length-sorted and batched for the engine;
when the engine has returned every batch of the group, the group's documents are added (or replaced)
and committed in one store commit. Results arrive in order, so groups commit in corpus order and chunk
ids come out the same whatever the engine, and the same after a kill and re-run as in one clean run.

A document with more chunks than a group holds is committed in pieces, so a kill loses at most one
group's work, not hours of a long document's. Until its last piece is in, the store lists it with status
"partial" (its committed chunks are searchable, its row counts only them); the next run re-chunks it
(same text and chunking, so the same chunks) and computes only the chunks after the committed ones.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexing.chunker import Chunk, chunk_documents
from indexing.engines.base import WorkBatch, WorkResult
from indexing.readers import Document
from indexing.walk import under_any
from ragcompress.store import Store
from ragcompress.store.records import INDEXED, PARTIAL

DEFAULT_COMMIT_EVERY = 256  # documents per commit, at most
DEFAULT_COMMIT_CHUNKS = 256  # chunks per commit, at least (grows with throughput, see _chunk_cap)
# Every commit rewrites faiss.index, which costs O(store size); on fast hardware groups therefore grow
# until one takes about this long to compute, bounded so their vectors stay a few hundred MB of RAM.
TARGET_COMMIT_SECONDS = 60.0
MAX_COMMIT_CHUNKS = 4096


@dataclass
class CommitInfo:
    """Passed to ``on_commit`` after every commit."""

    generation: int
    documents_done: int
    documents_total: int
    chunks_done: int


@dataclass
class CommitGroup:
    """Documents (or pieces of a long one) committed together; chunks are processed length-sorted in batches."""

    documents: list[Document] = field(default_factory=list)
    chunks: list[list[Chunk]] = field(default_factory=list)  # each document's chunks in this group
    first: list[int] = field(default_factory=list)  # the ordinal of each document's first chunk here
    ends: list[bool] = field(default_factory=list)  # whether the document's last chunk is in this group
    batches: list[list[tuple[int, int]]] = field(default_factory=list)  # (document, chunk) per slot
    embeddings: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    vectors: dict[tuple[int, int], Any] = field(default_factory=dict)
    received: int = 0

    @property
    def n_chunks(self) -> int:
        return sum(len(c) for c in self.chunks)

    @property
    def complete(self) -> bool:
        return self.received == len(self.batches)

    def add(self, doc: Document, chunks: list[Chunk], first: int, ends: bool) -> None:
        self.documents.append(doc)
        self.chunks.append(chunks)
        self.first.append(first)
        self.ends.append(ends)

    def plan(self, batch_size: int) -> None:
        slots = [(d, c) for d, chunks in enumerate(self.chunks) for c in range(len(chunks))]
        # Longest first (as compress() orders its own batches): similar lengths share a batch, so padding
        # stays small, and the batch needing the most memory runs first.
        slots.sort(key=lambda s: -self.chunks[s[0]][s[1]].n_tokens)
        self.batches = [slots[i : i + batch_size] for i in range(0, len(slots), batch_size)]

    def work(self, index: int) -> WorkBatch:
        chunks = [self.chunks[d][c] for d, c in self.batches[index]]
        return WorkBatch([c.text for c in chunks], [list(c.token_ids) for c in chunks])

    def accept(self, result: WorkResult) -> None:
        slots = self.batches[self.received]
        if len(result.vectors) != len(slots) or len(result.embeddings) != len(slots):
            raise RuntimeError(f"engine returned {len(result.vectors)} results for a batch of {len(slots)}")
        for slot, embedding, vectors in zip(slots, result.embeddings, result.vectors):
            self.embeddings[slot] = embedding
            self.vectors[slot] = vectors
        self.received += 1


class StoreUpdate:
    """One update of one store: plan, process group by group, commit."""

    def __init__(self, engine, tokenizer, reporter, timings, on_commit, batch_size, chunking, limits) -> None:
        self.engine, self.tokenizer, self.reporter = engine, tokenizer, reporter
        self.timings, self.on_commit, self.batch_size = timings, on_commit, batch_size
        self.chunking = chunking  # (chunk_tokens, overlap)
        self.limits = limits  # (commit_every documents, commit_chunks at least)
        self.chunks_done = self.tokens_done = self.commits = self.docs_done = 0
        self.chunks_seen = 0
        self.compute_seconds = 0.0
        self.resume: dict[str, int] = {}  # doc_id -> chunks a partial document already has in the store

    def update(
        self, store: Store, documents: list[Document], unreadable: Iterable[str] = ()
    ) -> dict[str, int]:
        """``unreadable``: corpus paths (files or folders) that exist but could not be read this time; the
        documents read from them before are kept as they are, not removed as if deleted."""
        stored = store.documents()
        existing = {doc.doc_id: doc.content_hash for doc in stored}
        current = {doc.doc_id for doc in documents}
        unreadable = list(unreadable)
        kept = {doc.doc_id for doc in stored if doc.doc_id not in current and under_any(doc.path, unreadable)}
        removed = [doc_id for doc_id in existing if doc_id not in current and doc_id not in kept]
        partial = {doc.doc_id: doc.n_chunks for doc in stored if doc.partial}
        # A partial document of unchanged text resumes after its committed chunks (the manifest pins the
        # chunking and tokenizer, so re-chunking gives the same chunks); one whose text changed starts over.
        self.resume = {
            doc.doc_id: partial[doc.doc_id]
            for doc in documents
            if doc.doc_id in partial and existing[doc.doc_id] == doc.content_hash
        }
        todo = [
            doc for doc in documents if existing.get(doc.doc_id) != doc.content_hash or doc.doc_id in partial
        ]
        counts = {
            # A resumed document counts as added: the index did not hold it whole.
            "added": sum(doc.doc_id not in existing or doc.doc_id in self.resume for doc in todo),
            "changed": sum(doc.doc_id in existing and doc.doc_id not in self.resume for doc in todo),
            "removed": len(removed),
            "kept_unreadable": len(kept),
            "unchanged": len(documents) - len(todo),
        }
        self.todo_total = len(todo)
        with store.begin_update() as writer:
            self.writer, self.existing = writer, existing
            if removed:
                for doc_id in removed:
                    writer.remove_document(doc_id)
                self._commit()
            self._process(todo)
            self._commit()  # (a rebuild with nothing to add still commits its empty store once)
        # leaving the block finishes the writer: a rebuild's new store replaces the old one only now
        return counts

    def _process(self, todo: list[Document]) -> None:
        self.reporter.stage("chunking", len(todo))
        self.reporter.stage("embedding", 0)
        self.reporter.stage("compressing", 0)
        pending: deque[CommitGroup] = deque()
        results = self.engine.map(self._batches(todo, pending), self._on_stage)
        for result in results:
            self._commit_ready(pending)  # groups without chunks that sit ahead of this result
            self.compute_seconds += result.embed_seconds + result.compress_seconds
            self.timings["embed"] += result.embed_seconds
            self.timings["compress"] += result.compress_seconds
            pending[0].accept(result)
            self._commit_ready(pending)
        self._commit_ready(pending)
        for stage in ("chunking", "embedding", "compressing"):
            self.reporter.finish(stage)

    def _batches(self, todo: list[Document], pending: deque[CommitGroup]) -> Iterator[WorkBatch]:
        """Chunk one group at a time, lazily: an engine that runs ahead pulls the next group early."""
        total_chars = sum(len(doc.text) for doc in todo) or 1
        chars_seen = 0
        group = CommitGroup()
        for position, doc in enumerate(todo):
            started = time.perf_counter()
            chunks = chunk_documents([doc], self.tokenizer, *self.chunking)
            first = self.resume.get(doc.doc_id, 0)
            if first > len(chunks):  # cannot happen with the same text and chunking; start over if it does
                first = 0
            self.timings["chunk"] += time.perf_counter() - started
            self.chunks_seen += len(chunks) - first
            chars_seen += len(doc.text)
            self.reporter.advance("chunking")
            last = position == len(todo) - 1
            while len(chunks) - first > (cap := self._chunk_cap()):
                # Longer than a commit group: commit it piece by piece (see the module docstring).
                group.add(doc, chunks[first : first + cap], first, ends=False)
                first += cap
                estimate = round(self.chunks_seen * total_chars / chars_seen)
                yield from self._close(group, pending, estimate)
                group = CommitGroup()
            group.add(doc, chunks[first:], first, ends=True)
            if last or len(group.documents) >= self.limits[0] or group.n_chunks >= self._chunk_cap():
                # Until every document is chunked, the number of chunks is extrapolated from the text read.
                estimate = self.chunks_seen if last else round(self.chunks_seen * total_chars / chars_seen)
                yield from self._close(group, pending, estimate)
                group = CommitGroup()

    def _close(self, group: CommitGroup, pending: deque[CommitGroup], estimate: int) -> Iterator[WorkBatch]:
        self.reporter.set_total("embedding", estimate)
        self.reporter.set_total("compressing", estimate)
        group.plan(self.batch_size)
        pending.append(group)
        for index in range(len(group.batches)):
            yield group.work(index)

    def _chunk_cap(self) -> int:
        rate = self.chunks_done / self.compute_seconds if self.compute_seconds > 0 else 0.0
        return int(min(MAX_COMMIT_CHUNKS, max(self.limits[1], rate * TARGET_COMMIT_SECONDS)))

    def _on_stage(self, stage: str, n: int) -> None:
        self.reporter.advance("embedding" if stage == "embedded" else "compressing", n)

    def _commit_ready(self, pending: deque[CommitGroup]) -> None:
        while pending and pending[0].complete:
            self._write(pending.popleft())

    def _write(self, group: CommitGroup) -> None:
        started = time.perf_counter()
        for d, (doc, chunks) in enumerate(zip(group.documents, group.chunks)):
            slots = [(d, c) for c in range(len(chunks))]
            embeddings = np.stack([group.embeddings[s] for s in slots]) if slots else np.zeros((0, 1))
            self.writer.add_document(
                doc.doc_id,
                doc.path,
                doc.content_hash,
                chunks,
                embeddings,
                [group.vectors[s] for s in slots],
                metadata=doc.metadata,
                status=INDEXED if group.ends[d] else PARTIAL,
                # A later piece continues the partial document its first piece (this run's or a killed
                # run's) committed; a first piece replaces whatever version the store holds.
                replace=group.first[d] == 0 and doc.doc_id in self.existing,
                append=group.first[d] > 0,
            )
            self.chunks_done += len(chunks)
            self.tokens_done += sum(c.n_tokens for c in chunks)
        self.docs_done += sum(group.ends)
        self.timings["write"] += time.perf_counter() - started
        self._commit()

    def _commit(self) -> None:
        started = time.perf_counter()
        if not self.writer.needs_commit:
            return
        generation = self.writer.commit()
        self.commits += 1
        self.timings["write"] += time.perf_counter() - started
        if self.on_commit is not None:
            self.on_commit(CommitInfo(generation, self.docs_done, self.todo_total, self.chunks_done))
