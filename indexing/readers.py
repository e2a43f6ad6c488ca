"""Readers: a corpus directory (or one file) in, Documents out, with every skipped file and the reason.

Nothing here raises for a bad file: the file is reported in ``ReadResult.skipped`` and the walk goes on.
The one error is a root that cannot be read at all (``CorpusError``). The walk (links, odd names) is in
indexing/walk.py, decoding in indexing/encoding.py. The formats, the id rules and the skip reasons are
described for users in docs/indexing-inputs.md; keep them in step.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import io
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from indexing.encoding import BINARY, BINARY_SNIFF_BYTES, decode_bytes
from indexing.html_text import html_to_text
from indexing.walk import CorpusError as CorpusError  # re-exported: callers import it from here
from indexing.walk import Skipped, list_files, read_failure, shown, sort_key
from indexing.walk import unescape_name as unescape_name
from ragcompress.store.fsutil import sha256_bytes

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
JSONL_SUFFIXES = frozenset({".jsonl"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES | PDF_SUFFIXES

EMPTY = "empty"
PDF_MISSING = "install ragcompress[pdf] to read PDFs"

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Document:
    """One document: ``text`` is normalised (see ``normalize_text``), ``path`` relative, posix style."""

    doc_id: str
    path: str
    text: str
    content_hash: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReadResult:
    root: Path
    documents: list[Document]
    skipped: list[Skipped]

    def summary(self) -> str:
        """One line for a progress log, e.g. 'read 12 documents from docs/; skipped 3: binary file (2), ...'."""
        root = shown(self.root)
        head = (
            f"read {len(self.documents)} documents from {root}"
            if self.documents
            else f"no readable documents in {root}"
        )
        if not self.skipped:
            return head
        # Group by the reason's stable head ("line 3: invalid JSON: ..." -> "invalid JSON").
        kinds = Counter(_reason_kind(s.reason) for s in self.skipped)
        detail = ", ".join(f"{kind} ({count})" for kind, count in sorted(kinds.items()))  # any kind reads right
        return f"{head}; skipped {len(self.skipped)}: {detail}"


def normalize_text(text: str) -> str:
    """Unix newlines, NFC, no surrounding whitespace: the same content always hashes the same."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # JSON may escape a lone UTF-16 surrogate ("\\ud800"); no encoder accepts one, so it becomes U+FFFD.
    text = _LONE_SURROGATE.sub("\ufffd", text)
    return unicodedata.normalize("NFC", text).strip()


def content_hash(text: str) -> str:
    """The sha256 of the normalised text's UTF-8 bytes: what the store records to detect changes."""
    return sha256_bytes(text.encode("utf-8"))


def read_corpus(
    root: str | os.PathLike,
    jsonl_text_field: str = "text",
    jsonl_id_field: str = "id",
    include: Iterable[str] | str | None = None,
    follow_links: bool = False,
) -> ReadResult:
    """Read every supported file under ``root`` (a directory, or a single file).

    ``include``: glob patterns matched against each file's relative posix path (``*`` crosses
    directories, so ``"*.md"`` takes Markdown files at any depth); files matching none are ignored
    silently. None reads every supported file.

    ``follow_links``: also follow symbolic links that lead out of the corpus (by default they are
    skipped, and reported: a link to /etc/passwd must not end up in an index by accident).
    """
    root = Path(root).expanduser()
    files, skipped = list_files(root, follow_links)
    patterns = [include] if isinstance(include, str) else list(include) if include is not None else None
    documents: list[Document] = []
    owner: dict[str, str] = {}  # doc id -> the path that claimed it first
    for path, rel, escaped in files:
        if patterns is not None and not any(fnmatch.fnmatchcase(rel, p) for p in patterns):
            continue
        try:
            docs, skips = _read_file(path, rel, jsonl_text_field, jsonl_id_field)
        except Exception as exc:  # noqa: BLE001 - a reader bug must cost one file, never the whole run
            docs, skips = [], [Skipped(rel, f"internal error: {type(exc).__name__}: {exc}; please report it")]
        if escaped:  # the stored path is an escaped spelling: say so, and unescape_name() undoes it
            docs = [(_with_metadata(doc, path_escaped=True), line) for doc, line in docs]
        skipped.extend(skips)
        # Two files can claim one id (notes.txt and notes.md): the first in sorted order keeps it.
        for doc, line in docs:
            if doc.doc_id in owner:
                reason = f"duplicate document id: '{doc.doc_id}' is taken by {owner[doc.doc_id]}; rename one"
                skipped.append(Skipped(doc.path, reason, line))
            else:
                owner[doc.doc_id] = doc.path
                documents.append(doc)
    skipped.sort(key=lambda s: (sort_key(s.path), s.line or 0))
    return ReadResult(root=root, documents=documents, skipped=skipped)


def _reason_kind(reason: str) -> str:
    """The stable head of a reason: 'line 3: invalid JSON: Expecting value' -> 'invalid JSON'."""
    if reason.startswith("line "):
        reason = reason.split(": ", 1)[-1]
    return reason.split(":")[0].split(" (")[0]


def _with_metadata(doc: Document, **extra: Any) -> Document:
    return Document(doc.doc_id, doc.path, doc.text, doc.content_hash, {**doc.metadata, **extra})


# --- reading one file ------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    """The file's bytes (a seam for tests: running as root, chmod 000 does not stop reads)."""
    return path.read_bytes()


def _read_head(path: Path, size: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def pdf_supported() -> bool:
    return importlib.util.find_spec("pypdf") is not None


def _read_file(
    path: Path, rel: str, text_field: str, id_field: str
) -> tuple[list[tuple[Document, int | None]], list[Skipped]]:
    """The file's documents, each with its .jsonl line number (None for whole files), and skips."""
    suffix = PurePosixPath(rel).suffix.lower()
    base_id = str(PurePosixPath(rel).with_suffix(""))
    if suffix not in SUPPORTED_SUFFIXES:
        unsupported = f"unsupported file type: '{suffix or '(no extension)'}'"
        try:
            head = _read_head(path, BINARY_SNIFF_BYTES)
        except OSError:  # never a document anyway: not being able to read it changes nothing
            return [], [Skipped(rel, unsupported)]
        return [], [Skipped(rel, BINARY if b"\x00" in head else unsupported)]
    if suffix in PDF_SUFFIXES and not pdf_supported():
        return [], [Skipped(rel, PDF_MISSING)]
    try:
        data = _read_bytes(path)
    except OSError as exc:
        return [], [read_failure(rel, exc)]
    if not data.strip():
        return [], [Skipped(rel, EMPTY)]
    if suffix in PDF_SUFFIXES:
        text, metadata, reason = _pdf_text(data)
    else:
        text, encoding, reason = decode_bytes(data)
        metadata = {} if encoding in ("utf-8", "utf-8-sig") else {"encoding": encoding}
        if text is not None and suffix in HTML_SUFFIXES:
            text, title = html_to_text(text)
            if title:
                metadata["title"] = title
        if text is not None and suffix in JSONL_SUFFIXES:
            return _read_jsonl(text, rel, base_id, text_field, id_field)
    if text is None:
        return [], [Skipped(rel, reason)]
    text = normalize_text(text)
    if not text:
        return [], [Skipped(rel, EMPTY)]
    return [(Document(base_id, rel, text, content_hash(text), metadata), None)], []


def _read_jsonl(
    text: str, rel: str, base_id: str, text_field: str, id_field: str
) -> tuple[list[tuple[Document, int | None]], list[Skipped]]:
    documents: list[tuple[Document, int | None]] = []
    skipped: list[Skipped] = []
    # split("\n"), not splitlines(): JSON strings may hold a raw U+2028, which splitlines() breaks on.
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            skipped.append(Skipped(rel, f"line {number}: invalid JSON: {exc.msg}", number))
            continue
        except (ValueError, RecursionError) as exc:  # an integer of 5000 digits, arrays nested 10**5 deep
            skipped.append(Skipped(rel, f"line {number}: invalid JSON: {exc}", number))
            continue
        if not isinstance(record, dict):
            skipped.append(Skipped(rel, f"line {number}: not a JSON object", number))
            continue
        body = record.get(text_field)
        if not isinstance(body, str):
            problem = "missing text field" if body is None else "text field is not a string"
            skipped.append(Skipped(rel, f"line {number}: {problem}: '{text_field}'", number))
            continue
        record_id = record.get(id_field)
        if record_id is None:
            record_id = number  # no id: the line number is stable as long as the file is
        elif isinstance(record_id, bool) or not isinstance(record_id, (str, int)):
            reason = f"line {number}: bad id field: '{id_field}' must be a string or an integer"
            skipped.append(Skipped(rel, reason, number))
            continue
        body = normalize_text(body)
        if not body:
            skipped.append(Skipped(rel, f"line {number}: {EMPTY}", number))
            continue
        metadata = {k: v for k, v in record.items() if k not in (text_field, id_field)}
        # A JSON id may escape a lone surrogate ("\\udc80"), which the store could not write; like the text,
        # it gets U+FFFD (two such ids then collide, and the second is reported as a duplicate).
        doc_id = _LONE_SURROGATE.sub("\ufffd", f"{base_id}#{record_id}")
        doc = Document(doc_id, rel, body, content_hash(body), metadata)
        documents.append((doc, number))
    if not documents and not skipped:
        skipped.append(Skipped(rel, EMPTY))
    return documents, skipped


def _pdf_text(data: bytes) -> tuple[str | None, dict[str, Any], str]:
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            return None, {}, "encrypted PDF"
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types on malformed files; any of them means "skip"
        return None, {}, f"unreadable PDF: {exc}"
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        return None, {}, f"{EMPTY} (no extractable text; a scanned PDF needs OCR first)"
    return text, {"pages": len(pages)}, ""
