"""Walking a corpus: which files are read and under what name, which are skipped and why.

Split out of readers.py. The rules are described for users in docs/indexing-inputs.md; keep the two in step.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

# os.scandir hands back a name that is not valid UTF-8 with each undecodable byte as a lone surrogate
# (U+DC80..U+DCFF, PEP 383); no UTF-8 encoder, SQLite's included, accepts those.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


class CorpusError(ValueError):
    """The corpus root itself cannot be read (missing, not a file or directory, not listable)."""


@dataclass(frozen=True)
class Skipped:
    """A file (or, for .jsonl, one line of it) that was not read, and why.

    ``unreadable``: the file or folder exists but reading it failed (permissions, I/O error). What is
    already indexed from it must then be kept, not removed as if it had been deleted.
    """

    path: str
    reason: str
    line: int | None = None
    unreadable: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"  # a .jsonl reason already starts with "line N: "


class Entry(NamedTuple):
    path: Path  # to open: the name exactly as on disk
    rel: str  # relative posix path, shown and stored: see escape_name
    escaped: bool  # the name had bytes that are not UTF-8 and ``rel`` spells them as \xNN


def escape_name(name: str) -> tuple[str, bool]:
    """A name that is not valid UTF-8 in a reversible, storable spelling: (spelling, whether escaped).

    Valid names are returned unchanged. Otherwise each undecodable byte becomes ``\\xNN`` (lower-case
    hex) and each backslash ``\\\\``, as git quotes such paths, so ``unescape_name`` gives the bytes back.
    """
    if not _UNDECODABLE.search(name):
        return name, False
    escaped = name.replace("\\", "\\\\")
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", escaped), True


def unescape_name(spelling: str) -> bytes:
    """The bytes of a name that ``escape_name`` escaped (documents with ``metadata["path_escaped"]``)."""

    def byte(match: re.Match) -> str:
        code = match.group(1)
        return "\\" if code == "\\" else chr(0xDC00 + int(code[1:], 16))

    return os.fsencode(_ESCAPE.sub(byte, spelling))


def shown(path: str | os.PathLike) -> str:
    """A path for a message: printing one with undecodable bytes would itself raise, and one with a
    newline or an escape sequence in its name would break the line or drive the terminal."""
    return printable(escape_name(str(path))[0])


def printable(text: str) -> str:
    """``text`` for one line of output: control characters (newline, tab, ESC, ...) as Python escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def list_files(root: Path, follow_links: bool = False) -> tuple[list[Entry], list[Skipped]]:
    """Regular files under root, sorted by relative path; plus what could not be walked, and why.

    Symbolic links are followed only while their target stays inside the corpus (resolved paths are
    compared), unless ``follow_links``: a corpus must not pull /etc/passwd into an index by accident.
    """
    try:
        root_stat = root.stat()
    except FileNotFoundError:
        raise CorpusError(
            f"corpus path {shown(root)} does not exist: pass a directory of documents or a single file"
        ) from None
    except OSError as exc:
        raise CorpusError(f"cannot open corpus path {shown(root)}: {exc.strerror or exc}") from None
    if stat.S_ISREG(root_stat.st_mode):  # named by the user: read even when it is a link
        rel, escaped = escape_name(root.name)
        return [Entry(root, rel, escaped)], []
    if not stat.S_ISDIR(root_stat.st_mode):
        raise CorpusError(
            f"corpus path {shown(root)} is not a directory or a regular file: pass a directory of documents"
        )
    try:
        os.scandir(root).close()
        real_root = root.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise CorpusError(
            f"cannot list corpus directory {shown(root)}: {reason}; check its permissions"
        ) from None

    files: list[Entry] = []
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
            linked_dirs.sort(key=lambda item: sort_key(item[1]), reverse=True)
            directory, rel, ancestors = linked_dirs.pop()
        try:
            dir_stat = directory.stat()
        except OSError as exc:
            skipped.append(_failed(rel, exc, os_reason(exc)))
            continue
        key = (dir_stat.st_dev, dir_stat.st_ino)
        if key in ancestors:
            skipped.append(Skipped(rel, f"symlink loop: points back to '{shown(walked[key] or '.')}'"))
            continue
        if key in walked:
            skipped.append(Skipped(rel, f"already read: same directory as '{shown(walked[key] or '.')}'"))
            continue
        walked[key] = rel
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            skipped.append(_failed(rel, exc, f"unreadable directory: {exc.strerror or exc}"))
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
                outside = is_link and not follow_links and _outside(path, real_root)
            except (OSError, RuntimeError) as exc:
                reason = link_reason(exc) if is_link else os_reason(exc)
                skipped.append(_failed(child, exc, reason))
                continue
            if outside:
                skipped.append(Skipped(child, outside))
            elif stat.S_ISDIR(mode):
                (linked_dirs if is_link else real_dirs).append((path, child, (*ancestors, key)))
            elif stat.S_ISREG(mode):
                files.append(Entry(path, *escape_name(child)))
            else:  # reading a FIFO would block forever; devices and sockets are not documents
                skipped.append(Skipped(child, "not a regular file: a device, pipe or socket"))
    files.sort(key=lambda item: sort_key(item.rel))
    # Relative paths stay as on disk while walking (to open and compare them); what is shown and stored
    # is their escaped spelling.
    skipped = [Skipped(shown(s.path), s.reason, s.line, s.unreadable) for s in skipped]
    return files, skipped


def _outside(link: Path, real_root: Path) -> str:
    """The skip reason when a link leads out of the corpus, else ""."""
    target = link.resolve(strict=True)
    if target.is_relative_to(real_root):
        return ""
    return f"symlink to outside the corpus ({shown(target)}): not read; pass --follow-links to read it"


def _failed(rel: str, exc: Exception, reason: str) -> Skipped:
    # Gone (deleted meanwhile, a broken link) or a link loop is a fact about the corpus; anything else
    # (permissions, I/O errors) says nothing about the content, so what is indexed from it stays.
    gone = isinstance(exc, (FileNotFoundError, RuntimeError)) or getattr(exc, "errno", None) == errno.ELOOP
    return Skipped(rel, reason, unreadable=not gone)


def sort_key(rel: str) -> tuple[str, ...]:
    # By path parts, so a directory's files stay together whatever characters the names hold.
    return tuple(rel.split("/"))


def link_reason(exc: Exception) -> str:
    if getattr(exc, "errno", None) == errno.ELOOP or isinstance(exc, RuntimeError):
        return "symlink loop"
    if isinstance(exc, FileNotFoundError):
        return "broken symlink: its target does not exist"
    return os_reason(exc)


def os_reason(exc: Exception) -> str:
    strerror = getattr(exc, "strerror", None)
    return f"unreadable: {strerror}" if strerror else f"unreadable: {exc}"


def read_failure(rel: str, exc: OSError) -> Skipped:
    """The skip entry for a file whose listing worked but whose reading failed."""
    return _failed(rel, exc, os_reason(exc))


def under_any(path: str, prefixes: Iterable[str]) -> bool:
    """Whether a corpus path is one of ``prefixes`` or lies in one of them (as folders)."""
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in prefixes)
