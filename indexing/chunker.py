"""Token-aware chunking: cut each document into pieces the compressor reads in one go.

A chunk is a span ``doc.text[char_start:char_end]`` whose own tokenisation has at most ``chunk_tokens``
tokens. Cuts go at paragraph breaks where possible, else at sentence ends, else between words, else
between tokens. Each chunk after the first repeats about ``overlap`` tokens of the previous one, starting
at a sentence or word start, so a fact cut in half by a boundary is whole in one of the two chunks.

The whole document is tokenised once (batched over documents) with offsets; those offsets give a cheap
token count for any span. A span tokenised on its own can differ from that count by a token or two at
its edges, so every chunk is re-tokenised before it is accepted: the ids we hand out are the chunk's
own, and ``len(chunk.token_ids) <= chunk_tokens`` always holds.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from indexing.readers import Document

MIN_CHUNK_TOKENS = 16
# Documents tokenised per batched tokenizer call; bounds the memory held by offset lists.
DOCS_PER_BATCH = 64
# The offsets-based count may undercount a span by a few tokens; spans estimated within this margin of
# the budget are re-tokenised before we decide they do not fit.
_ESTIMATE_SLACK = 4

# Every cut sits at the end of a whitespace run, so chunks end with their whitespace and the next chunk
# starts on a word. The three patterns nest: a paragraph cut is also a sentence cut and a word cut.
_PARAGRAPH_CUT = re.compile(r"\n[ \t\f\v]*\n\s*")
_SENTENCE_CUT = re.compile(r"[.!?…][\"'”’)\]]*\s+|\n[ \t\f\v]*\n\s*")
_WORD_CUT = re.compile(r"\s+")
_NON_SPACE = re.compile(r"\S")


@dataclass(frozen=True)
class Chunk:
    """One piece of a document. ``token_ids`` are the chunk text's own tokens, no special tokens."""

    doc_id: str
    ordinal: int
    text: str
    char_start: int
    char_end: int
    n_tokens: int
    token_ids: list[int]


def validate_chunking(chunk_tokens: int, overlap: int) -> None:
    """Raise ValueError with a clear message when the chunking parameters make no sense."""
    for name, value in (("chunk_tokens", chunk_tokens), ("overlap", overlap)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if chunk_tokens < MIN_CHUNK_TOKENS:
        raise ValueError(f"chunk_tokens={chunk_tokens} is too small: use at least {MIN_CHUNK_TOKENS}")
    if overlap < 0:
        raise ValueError(f"overlap={overlap} must be 0 or more")
    if overlap >= chunk_tokens:
        raise ValueError(
            f"overlap={overlap} must be smaller than chunk_tokens={chunk_tokens} "
            "(each chunk needs room for new text)"
        )


def chunk_document(doc: Document, tokenizer, chunk_tokens: int = 512, overlap: int = 64) -> list[Chunk]:
    """Chunks of one document, in reading order (see the module docstring for the rules)."""
    return chunk_documents([doc], tokenizer, chunk_tokens=chunk_tokens, overlap=overlap)


def chunk_documents(
    docs: Iterable[Document], tokenizer, chunk_tokens: int = 512, overlap: int = 64
) -> list[Chunk]:
    """Chunks of many documents, in document order; tokenises the documents in batches."""
    validate_chunking(chunk_tokens, overlap)
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            "chunking needs a fast (Rust) tokenizer, which reports character offsets; "
            f"got {type(tokenizer).__name__}"
        )
    chunks: list[Chunk] = []
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == DOCS_PER_BATCH:
            chunks.extend(_chunk_batch(batch, tokenizer, chunk_tokens, overlap))
            batch = []
    if batch:
        chunks.extend(_chunk_batch(batch, tokenizer, chunk_tokens, overlap))
    return chunks


def _chunk_batch(docs: Sequence[Document], tokenizer, chunk_tokens: int, overlap: int) -> list[Chunk]:
    encoded = tokenizer(
        [doc.text for doc in docs],
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
    )
    chunks: list[Chunk] = []
    for doc, offsets in zip(docs, encoded["offset_mapping"]):
        planner = _Planner(doc.text, offsets, tokenizer, chunk_tokens, overlap)
        ordinal = 0
        for start, end, ids in planner.spans():
            text = doc.text[start:end]
            if not text.strip():  # nothing to compress or retrieve
                continue
            chunks.append(Chunk(doc.doc_id, ordinal, text, start, end, len(ids), ids))
            ordinal += 1
    return chunks


class _Planner:
    """Plans the spans of one document. Positions are character offsets into ``text``."""

    def __init__(self, text: str, offsets, tokenizer, chunk_tokens: int, overlap: int) -> None:
        self.text = text
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        # Byte-level tokenizers split one character into several tokens that share its offsets, so
        # starts and ends are non-decreasing rather than strictly increasing; bisect copes with that.
        self.starts = [int(s) for s, _ in offsets]
        self.ends = [int(e) for _, e in offsets]
        self.paragraph_cuts = [m.end() for m in _PARAGRAPH_CUT.finditer(text)]
        self.sentence_cuts = [m.end() for m in _SENTENCE_CUT.finditer(text)]
        self.word_cuts = [m.end() for m in _WORD_CUT.finditer(text)]
        self.last_visible = len(text.rstrip()) - 1

    def spans(self) -> list[tuple[int, int, list[int]]]:
        n = len(self.text)
        if not self.text.strip():
            return []
        spans: list[tuple[int, int, list[int]]] = []
        start = new_from = 0  # new_from: where this chunk's text stops repeating the previous chunk
        while True:
            ids = self._fitting_ids(start, n)
            if ids is not None:
                spans.append((start, n, ids))
                return spans
            found = self._choose_cut(start, new_from)
            if found is None:
                # The overlap left no room for new text in this chunk: give it up and start fresh.
                if start == new_from:
                    raise RuntimeError(
                        f"cannot fit any text at offset {start} into {self.chunk_tokens} tokens"
                    )
                start = new_from
                continue
            cut, ids = found
            spans.append((start, cut, ids))
            start, new_from = self._overlap_start(cut, previous_start=start), cut

    def _estimate(self, start: int, end: int) -> int:
        """Tokens of the whole-document tokenisation that touch ``[start, end)``."""
        return bisect_left(self.starts, end) - bisect_right(self.ends, start)

    def _fitting_ids(self, start: int, end: int) -> list[int] | None:
        """The span's own token ids when they fit the budget, else None."""
        if self._estimate(start, end) > self.chunk_tokens + _ESTIMATE_SLACK:
            return None  # far too long; skip the tokenizer call
        ids = self.tokenizer(self.text[start:end], add_special_tokens=False)["input_ids"]
        return list(ids) if len(ids) <= self.chunk_tokens else None

    def _choose_cut(self, start: int, new_from: int) -> tuple[int, list[int]] | None:
        """The best cut after ``new_from`` that keeps ``[start, cut)`` within budget, with its ids."""
        first = bisect_right(self.ends, start)  # first token that reaches past `start`
        new_first = bisect_left(self.starts, new_from)
        limit = first + self.chunk_tokens  # index of the first token that would not fit
        while True:
            hi = self.starts[limit] if limit < len(self.starts) else len(self.text)
            # The whole rest does not fit, so the cut comes before its last visible character (a rest
            # of only whitespace would be dropped, losing it).
            hi = min(hi, self.last_visible if self.last_visible > new_from else len(self.text) - 1)
            if hi <= new_from:
                return None
            # The chunk must hold some visible text, or it would be dropped and its span lost; only a
            # whitespace run longer than a whole chunk is cut inside.
            visible = _NON_SPACE.search(self.text, new_from, hi)
            lo = visible.start() if visible else new_from
            # A paragraph or sentence break only wins if the chunk keeps at least half of the room it
            # has for new text; an early break would waste most of the chunk.
            half = new_first + max(limit - new_first, 0) // 2
            fill = self.starts[half] if half < len(self.starts) else hi
            cut = (
                _last_in(self.paragraph_cuts, max(new_from, fill), hi)
                or _last_in(self.sentence_cuts, max(new_from, fill), hi)
                or _last_in(self.word_cuts, lo, hi)
                or _last_in(self.starts, lo, hi)
            )
            if cut is None:
                return None
            ids = self.tokenizer(self.text[start:cut], add_special_tokens=False)["input_ids"]
            if len(ids) <= self.chunk_tokens:
                return cut, list(ids)
            # Re-tokenised on its own the span came out longer: try again with a tighter limit.
            limit = min(limit, bisect_left(self.starts, cut)) - 1

    def _overlap_start(self, cut: int, previous_start: int) -> int:
        """Where the next chunk starts: about ``overlap`` tokens before ``cut``, on a sentence or word."""
        if self.overlap == 0:
            return cut
        cut_token = bisect_left(self.starts, cut)
        target = max(cut_token - self.overlap, 0)
        # A character split into several byte tokens must not be entered halfway (its whole token run
        # would come along): move on to the first token that starts after the previous one ends.
        while 0 < target < cut_token and self.starts[target] < self.ends[target - 1]:
            target += 1
        # Never start at or before the previous chunk's start, or the plan would stop moving forward.
        lo = max(self.starts[target] if target < len(self.starts) else cut, previous_start + 1)
        # A sentence start is worth losing up to half the overlap; a word start is taken at the target.
        half = max(cut_token - self.overlap // 2, target)
        sentence_hi = min(self.starts[half] if half < len(self.starts) else cut, cut - 1)
        found = (
            _first_in(self.sentence_cuts, lo, sentence_hi)
            or _first_in(self.word_cuts, lo, cut - 1)
            or _first_in(self.starts, lo, cut - 1)
        )
        return found if found is not None else cut


def _last_in(positions: Sequence[int], lo: int, hi: int) -> int | None:
    """The largest position p with lo < p <= hi (positions sorted)."""
    i = bisect_right(positions, hi) - 1
    return positions[i] if i >= 0 and positions[i] > lo else None


def _first_in(positions: Sequence[int], lo: int, hi: int) -> int | None:
    """The smallest position p with lo <= p <= hi (positions sorted)."""
    i = bisect_left(positions, lo)
    return positions[i] if i < len(positions) and positions[i] <= hi else None
