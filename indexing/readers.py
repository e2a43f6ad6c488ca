"""Readers: a corpus directory (or one file) in, Documents out, with every skipped file and the reason.

Nothing here raises for a bad file: the file is reported in ``ReadResult.skipped`` and the walk goes on.
The one error is a root that cannot be read at all (``CorpusError``). The formats, the id rules and the
skip reasons are described for users in docs/indexing-inputs.md; keep the two in step.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import importlib.util
import io
import json
import os
import re
import stat
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from indexing.encoding import BINARY, BINARY_SNIFF_BYTES, decode_bytes
from indexing.html_text import html_to_text

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
JSONL_SUFFIXES = frozenset({".jsonl"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES | PDF_SUFFIXES

EMPTY = "empty"
PDF_MISSING = "install ragcompress[pdf] to read PDFs"

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class CorpusError(ValueError):
    """The corpus root itself cannot be read (missing, not a file or directory, not listable)."""


@dataclass(frozen=True)
class Document:
    """One document: ``text`` is normalised (see ``normalize_text``), ``path`` relative, posix style."""

    doc_id: str
    path: str
    text: str
    content_hash: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """A file (or, for .jsonl, one line of it) that was not read, and why."""

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"  # a .jsonl reason already starts with "line N: "


@dataclass
class ReadResult:
    root: Path
    documents: list[Document]
    skipped: list[Skipped]

    def summary(self) -> str:
        """One line for a progress log, e.g. 'read 12 documents from docs/; skipped 2: 1 binary file, ...'."""
        head = (
            f"read {len(self.documents)} documents from {self.root}"
            if self.documents
            else f"no readable documents in {self.root}"
        )
        if not self.skipped:
            return head
        # Group by the reason's stable head ("line 3: invalid JSON: ..." -> "invalid JSON").
        kinds = Counter(_reason_kind(s.reason) for s in self.skipped)
        detail = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        return f"{head}; skipped {len(self.skipped)}: {detail}"


def normalize_text(text: str) -> str:
    """Unix newlines, NFC, no surrounding whitespace: the same content always hashes the same."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # JSON may escape a lone UTF-16 surrogate ("\\ud800"); no encoder accepts one, so it becomes U+FFFD.
    text = _LONE_SURROGATE.sub("\ufffd", text)
    return unicodedata.normalize("NFC", text).strip()


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_corpus(
    root: str | os.PathLike,
    jsonl_text_field: str = "text",
    jsonl_id_field: str = "id",
    include: Iterable[str] | str | None = None,
) -> ReadResult:
    """Read every supported file under ``root`` (a directory, or a single file).

    ``include``: glob patterns matched against each file's relative posix path (``*`` crosses
    directories, so ``"*.md"`` takes Markdown files at any depth); files matching none are ignored
    silently. None reads every supported file.
    """
    root = Path(root).expanduser()
    files, skipped = _list_files(root)
    patterns = [include] if isinstance(include, str) else list(include) if include is not None else None
    documents: list[Document] = []
    owner: dict[str, str] = {}  # doc id -> the path that claimed it first
    for path, rel in files:
        if patterns is not None and not any(fnmatch.fnmatchcase(rel, p) for p in patterns):
            continue
        docs, skips = _read_file(path, rel, jsonl_text_field, jsonl_id_field)
        skipped.extend(skips)
        # Two files can claim one id (notes.txt and notes.md): the first in sorted order keeps it.
        for doc, line in docs:
            if doc.doc_id in owner:
                reason = f"duplicate document id: '{doc.doc_id}' is taken by {owner[doc.doc_id]}; rename one"
                skipped.append(Skipped(doc.path, reason, line))
            else:
                owner[doc.doc_id] = doc.path
                documents.append(doc)
    skipped.sort(key=lambda s: (_sort_key(s.path), s.line or 0))
    return ReadResult(root=root, documents=documents, skipped=skipped)


# --- walking ---------------------------------------------------------------------------------------


def _list_files(root: Path) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """Regular files under root as (path, relative posix path), sorted; plus what could not be walked."""
    try:
        root_stat = root.stat()
    except FileNotFoundError:
        raise CorpusError(
            f"corpus path {root} does not exist: pass a directory of documents or a single file"
        ) from None
    except OSError as exc:
        raise CorpusError(f"cannot open corpus path {root}: {exc.strerror or exc}") from None
    if stat.S_ISREG(root_stat.st_mode):
        return [(root, root.name)], []
    if not stat.S_ISDIR(root_stat.st_mode):
        raise CorpusError(
            f"corpus path {root} is not a directory or a regular file: pass a directory of documents"
        )
    try:
        os.scandir(root).close()
    except OSError as exc:
        raise CorpusError(
            f"cannot list corpus directory {root}: {exc.strerror or exc}; check its permissions"
        ) from None

    files: list[tuple[Path, str]] = []
    skipped: list[Skipped] = []
    walked: dict[tuple[int, int], str] = {}  # (device, inode) of each directory walked -> its rel path
    # Directory symlinks wait until every real directory has been walked, so a tree reachable both
    # directly and through a link is read under its real name, and each directory is read only once.
    real_dirs: list[tuple[Path, str, tuple[tuple[int, int], ...]]] = [(root, "", ())]
    linked_dirs: list[tuple[Path, str, tuple[tuple[int, int], ...]]] = []
    while real_dirs or linked_dirs:
        if real_dirs:
            directory, rel, ancestors = real_dirs.pop()
        else:
            linked_dirs.sort(key=lambda item: _sort_key(item[1]), reverse=True)
            directory, rel, ancestors = linked_dirs.pop()
        try:
            dir_stat = directory.stat()
        except OSError as exc:
            skipped.append(Skipped(rel, _os_reason(exc)))
            continue
        key = (dir_stat.st_dev, dir_stat.st_ino)
        if key in ancestors:
            skipped.append(Skipped(rel, f"symlink loop: points back to '{walked[key] or '.'}'"))
            continue
        if key in walked:
            skipped.append(Skipped(rel, f"already read: same directory as '{walked[key] or '.'}'"))
            continue
        walked[key] = rel
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(rel, f"unreadable directory: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):  # hidden files and directories (.git, .venv, .DS_Store)
                continue
            child = f"{rel}/{entry.name}" if rel else entry.name
            path = Path(entry.path)
            is_link = False
            try:
                is_link = entry.is_symlink()
                mode = path.stat().st_mode if is_link else entry.stat(follow_symlinks=False).st_mode
            except OSError as exc:
                skipped.append(Skipped(child, _link_reason(exc) if is_link else _os_reason(exc)))
                continue
            if stat.S_ISDIR(mode):
                (linked_dirs if is_link else real_dirs).append((path, child, (*ancestors, key)))
            elif stat.S_ISREG(mode):
                files.append((path, child))
            else:  # reading a FIFO would block forever; devices and sockets are not documents
                skipped.append(Skipped(child, "not a regular file: a device, pipe or socket"))
    files.sort(key=lambda item: _sort_key(item[1]))
    return files, skipped


def _sort_key(rel: str) -> tuple[str, ...]:
    # By path parts, so a directory's files stay together whatever characters the names hold.
    return tuple(rel.split("/"))


def _link_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(exc, FileNotFoundError):
        return "broken symlink: its target does not exist"
    return _os_reason(exc)


def _os_reason(exc: OSError) -> str:
    return f"unreadable: {exc.strerror}" if exc.strerror else f"unreadable: {exc}"


def _reason_kind(reason: str) -> str:
    """The stable head of a reason: 'line 3: invalid JSON: Expecting value' -> 'invalid JSON'."""
    if reason.startswith("line "):
        reason = reason.split(": ", 1)[-1]
    return reason.split(":")[0].split(" (")[0]


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
        try:
            head = _read_head(path, BINARY_SNIFF_BYTES)
        except OSError as exc:
            return [], [Skipped(rel, _os_reason(exc))]
        reason = BINARY if b"\x00" in head else f"unsupported file type: '{suffix or '(no extension)'}'"
        return [], [Skipped(rel, reason)]
    if suffix in PDF_SUFFIXES and not pdf_supported():
        return [], [Skipped(rel, PDF_MISSING)]
    try:
        data = _read_bytes(path)
    except OSError as exc:
        return [], [Skipped(rel, _os_reason(exc))]
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
        doc = Document(f"{base_id}#{record_id}", rel, body, content_hash(body), metadata)
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
