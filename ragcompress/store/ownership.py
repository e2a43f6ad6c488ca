"""Recognising a store directory beyond doubt, and deleting only what a store itself created.

Plenty of folders hold a file named ``manifest.json`` (a web app, a browser extension), so that file alone
proves nothing. A folder is *ours* only when every entry in it (and in its ``vectors/``) is a name the
store writes, and its ``meta.sqlite`` has the store's schema or its manifest carries the store's format
marker. ``--rebuild`` replaces nothing else, and removing a store unlinks only the names it writes, so a
file a user dropped into an index folder is left where it was, never deleted.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote

from ragcompress.store.faiss_index import FAISS_NAME
from ragcompress.store.lock import LOCK_NAME
from ragcompress.store.manifest import MANIFEST_NAME, is_store_manifest
from ragcompress.store.meta import META_NAME
from ragcompress.store.shards import VECTORS_DIR

# meta.sqlite's WAL and shared-memory files appear next to it while any connection is open.
TOP_FILES = frozenset(
    {MANIFEST_NAME, META_NAME, f"{META_NAME}-wal", f"{META_NAME}-shm", f"{META_NAME}-journal", FAISS_NAME}
    | {LOCK_NAME}
)
SHARD_NAME = re.compile(r"g\d{8}-\d{4}\.safetensors")
# fsutil.temp_path: ".<final name>.tmp-<pid>"
TEMP_NAME = re.compile(r"\.(?P<final>.+)\.tmp-\d+")
META_TABLES = {"documents", "chunks", "shards", "meta", "commits"}
SQLITE_HEADER = b"SQLite format 3\x00"


def _top_file(name: str) -> bool:
    temp = TEMP_NAME.fullmatch(name)
    return name in TOP_FILES or (temp is not None and temp["final"] in TOP_FILES)


def _shard_file(name: str) -> bool:
    temp = TEMP_NAME.fullmatch(name)
    return SHARD_NAME.fullmatch(name) is not None or (
        temp is not None and SHARD_NAME.fullmatch(temp["final"])
    )


def foreign_entries(directory: Path) -> list[str]:
    """Entries of ``directory`` (and of its ``vectors/``) that a store never writes, relative to it."""
    foreign = []
    for entry in sorted(directory.iterdir()):
        if entry.name == VECTORS_DIR and entry.is_dir() and not entry.is_symlink():
            foreign += [
                f"{VECTORS_DIR}/{inner.name}"
                for inner in sorted(entry.iterdir())
                if not (_shard_file(inner.name) and inner.is_file() and not inner.is_symlink())
            ]
        elif not (_top_file(entry.name) and entry.is_file() and not entry.is_symlink()):
            foreign.append(entry.name)
    return foreign


def manifest_state(directory: Path) -> str:
    """``ours``, ``foreign`` (JSON of another kind), ``unreadable`` (damaged) or ``missing``."""
    try:
        data = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "unreadable"
    return "ours" if is_store_manifest(data) else "foreign"


def has_store_metadata(directory: Path) -> bool:
    """Whether ``meta.sqlite`` is a SQLite database with the store's tables and schema version."""
    path = directory / META_NAME
    try:
        with open(path, "rb") as handle:
            if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                return False
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    except (OSError, sqlite3.Error):
        return False
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return META_TABLES <= tables and version is not None
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def not_ours_reason(directory: Path) -> str | None:
    """Why ``directory`` is not provably a store, in a few words; None when it is one."""
    if not directory.is_dir():
        return "it is not a folder"
    foreign = foreign_entries(directory)
    if foreign:
        shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
        return f"it holds {shown}, which an index never creates"
    state = manifest_state(directory)
    if state == "foreign":
        return f"its {MANIFEST_NAME} is not a ragcompress index manifest"
    if has_store_metadata(directory):
        return None  # a damaged or missing manifest does not make a store someone else's
    if state == "ours" and (directory / VECTORS_DIR).is_dir():
        return None  # damaged metadata: the marker and the layout still prove it is ours
    return f"it has no ragcompress index metadata ({META_NAME})"


def remove_store_dir(directory: Path) -> list[str]:
    """Delete the files a store writes in ``directory``, then the folder if that emptied it.

    Returns what was left behind because the store did not write it (nothing, normally)."""
    if directory.is_symlink():
        directory.unlink()  # the link is ours to drop; whatever it points to is not
        return []
    if not directory.is_dir():
        return []
    vectors = directory / VECTORS_DIR
    if vectors.is_dir() and not vectors.is_symlink():
        for entry in vectors.iterdir():
            if _shard_file(entry.name) and entry.is_file() and not entry.is_symlink():
                _unlink(entry)
        _rmdir(vectors)
    for entry in directory.iterdir():
        if _top_file(entry.name) and entry.is_file() and not entry.is_symlink():
            _unlink(entry)
    if _rmdir(directory):
        return []
    return foreign_entries(directory)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _rmdir(path: Path) -> bool:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # not empty: it holds something the store did not write
    return True
