"""The train split of the corpus cut into passages, and the sentences of a passage that can hold a blank.

Only `<corpus>/<source>/train.jsonl` is ever opened, and ids on the held-out list of the real-document
set are dropped again, so no evaluation page can become training data (docs/training-data.md).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ragcompress_tools.corpus import SOURCES

TokenCounter = Callable[[list[str]], list[int]]

# evalsets/realdocs/documents.txt beside the package in a checkout (scripts/build_corpus.py reads it too)
HELDOUT_LIST = Path(__file__).resolve().parents[2] / "evalsets" / "realdocs" / "documents.txt"
MIN_PASSAGE_TOKENS = 48
MIN_WORDS, MAX_WORDS = 6, 60
# Sources in reStructuredText: indented paragraphs are literal blocks, `..` opens a directive.
RST_SOURCES = frozenset({"linux-docs", "python-docs"})
VERSE_SOURCES = frozenset({"shakespeare"})
# Sources where code-like strings are looked for (elsewhere "--and" is a dash, not an option).
TECHNICAL_SOURCES = RST_SOURCES

# The kernel's translations (Italian, Chinese, Japanese, ...): the model and its questions are English.
_SKIPPED_DOCUMENT = re.compile(r"^linux-docs/translations/")
_ABBREVIATION = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|viz|cf|Fig|No|e\.g|i\.e)|\b[A-Z])\.$")
# A sentence ends before a capital, digit or quote; or before a "--Author." citation (gcide).
_SENTENCE_END = re.compile(r"[.!?][\"')\]”’*_]*(?=\s+(?:--)?[\"'(`*_“‘]?[A-Z0-9`])")
_UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+_.:])\1{2,}\s*$", re.MULTILINE)
_BULLET_LINE = re.compile(r"\n\s*(?:[-*+•]|\d+[.)]|#\.)\s")
_JUNK = re.compile(r"\||={3,}|-{3,}|~{3,}|\*{3,}|\\|<[a-z]+>|\[|\]|\s\?[\s,.;]")


@dataclass(frozen=True)
class Passage:
    """A piece of one training document, short enough that stage 2 reads all of it."""

    doc_id: str  # the corpus document's id, e.g. "austen/emma#00012"
    part: int  # its place in that document
    source: str
    text: str


def proxy_token_counts(texts: list[str]) -> list[int]:
    """A tokenizer-free upper estimate of SmolLM2 token counts (no source averages over 3.1 chars/token)."""
    return [math.ceil(max(len(t.split()) * 1.3, len(t) / 3.0)) for t in texts]


def heldout_ids(path: Path = HELDOUT_LIST) -> set[str]:
    """Corpus ids of the real-document evaluation pages (empty when the list is not beside the package)."""
    if not path.is_file():
        return set()
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def check_sources(corpus: Path, sources: list[str]) -> None:
    """One-line errors for a missing corpus, an unknown source or a source without a train split."""
    if not corpus.is_dir():
        raise FileNotFoundError(
            f"{corpus}: corpus directory not found; build it with scripts/build_corpus.py"
        )
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown source {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    if not sources:
        raise ValueError("no sources given")
    for source in sources:
        if not (corpus / source / "train.jsonl").is_file():
            raise FileNotFoundError(f"{corpus / source / 'train.jsonl'}: not found; build that source first")


def train_documents(corpus: Path, source: str, exclude: set[str]) -> Iterator[tuple[str, str]]:
    """(id, text) of the source's train split, in file order, without the ids in `exclude`."""
    path = corpus / source / "train.jsonl"
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                doc_id, text = row["id"], row["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(
                    f"{path}:{line_number}: expected a JSON object with 'id' and 'text'"
                ) from None
            if doc_id not in exclude and not _SKIPPED_DOCUMENT.search(doc_id):
                yield doc_id, text


def cut_passages(doc_id: str, source: str, text: str, max_tokens: int, count: TokenCounter) -> list[Passage]:
    """Cut a document on paragraph boundaries (then line, then word boundaries) into passages of at most
    `max_tokens` tokens as `count` counts them; pieces under `MIN_PASSAGE_TOKENS` are dropped."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    pieces: list[tuple[str, str, int]] = []  # (separator before it, text, tokens)
    for paragraph, size in zip(paragraphs, count(paragraphs), strict=True):
        pieces.extend(
            [("\n\n", paragraph, size)] if size <= max_tokens else _fit(paragraph, max_tokens, count)
        )
    groups: list[list[str]] = []
    current: list[str] = []
    used = 0
    for separator, piece, size in pieces:
        if current and used + size + 2 > max_tokens:  # 2: the separator, and a merge at the seam
            groups.append(current)
            current, used = [], 0
        current.extend([separator, piece] if current else [piece])
        used += size + 2
    if current:
        groups.append(current)
    texts = ["".join(parts).strip() for parts in groups]
    passages = [
        t for t, size in zip(texts, count(texts), strict=True) if MIN_PASSAGE_TOKENS <= size <= max_tokens
    ]
    return [Passage(doc_id, part, source, t) for part, t in enumerate(passages)]


def _fit(paragraph: str, max_tokens: int, count: TokenCounter) -> list[tuple[str, str, int]]:
    """A long paragraph as pieces that each fit: its lines, and word-cut parts of a line that is too long."""
    lines = paragraph.split("\n")
    pieces: list[tuple[str, str, int]] = []
    for number, (line, size) in enumerate(zip(lines, count(lines), strict=True)):
        separator = "\n\n" if number == 0 else "\n"
        if size <= max_tokens:
            pieces.append((separator, line, size))
            continue
        words = line.split(" ")
        step = max(1, len(words) * max_tokens // (2 * size))
        parts = [" ".join(words[start : start + step]) for start in range(0, len(words), step)]
        for index, (part, part_size) in enumerate(zip(parts, count(parts), strict=True)):
            pieces.append((separator if index == 0 else " ", part, part_size))
    return pieces


def sentences(passage: Passage) -> list[tuple[int, int]]:
    """(start, end) offsets in `passage.text` of the sentences that can hold a blank.

    A sentence lies inside one prose paragraph (not a heading, table, directive or, in rst sources, an
    indented literal block), starts with a capital, digit or quote, ends with . ! or ?, has 6-60 words,
    mostly words of letters, and no list bullets or markup junk inside.
    """
    found = []
    text = passage.text
    for paragraph in re.finditer(r"[^\n](?:.|\n(?!\s*\n))*", text):
        block = paragraph.group()
        if _UNDERLINE.search(block):
            continue
        if passage.source in RST_SOURCES and (block[:1].isspace() or block.lstrip().startswith("..")):
            continue
        start = 0
        for match in _SENTENCE_END.finditer(block + " A"):
            end = match.end()
            if _ABBREVIATION.search(block[start : match.start() + 1]):
                continue
            found.append(_trimmed(block, start, min(end, len(block)), paragraph.start()))
            start = end
            while start < len(block) and block[start].isspace():
                start += 1
    return [(s, e) for s, e in found if e > s and _is_good_sentence(text[s:e])]


def _trimmed(block: str, start: int, end: int, offset: int) -> tuple[int, int]:
    while start < end and block[start].isspace():
        start += 1
    while end > start and block[end - 1].isspace():
        end -= 1
    return offset + start, offset + end


def _is_good_sentence(sentence: str) -> bool:
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    first = re.search(r"[A-Za-z0-9]", sentence)
    if first is None or sentence[first.start()].islower() or not re.search(r"[.!?][\"')\]”’*_]*$", sentence):
        return False
    if _BULLET_LINE.search(sentence) or _JUNK.search(sentence) or sentence.startswith(("[", "..", "-")):
        return False
    return sum(bool(re.search(r"[A-Za-z]{2}", w)) for w in words) >= 0.6 * len(words)
