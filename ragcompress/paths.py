"""Where indexes live when the user names no directory, and which one was built last."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ragcompress.defaults import cache_root


def data_root() -> Path:
    """``RAGCOMPRESS_HOME`` or ``~/.local/share/ragcompress``."""
    return Path(os.environ.get("RAGCOMPRESS_HOME", Path.home() / ".local" / "share" / "ragcompress"))


def default_index_dir(corpus: str | Path) -> Path:
    """``<data root>/indexes/<corpus name>-<hash of its absolute path>``: one index per corpus folder."""
    corpus = Path(corpus).resolve()
    digest = hashlib.sha256(str(corpus).encode()).hexdigest()[:8]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in corpus.name) or "corpus"
    return data_root() / "indexes" / f"{name}-{digest}"


def remember_last_index(index_dir: str | Path) -> None:
    pointer = data_root() / "last_index"
    pointer.parent.mkdir(parents=True, exist_ok=True)
    staging = pointer.with_suffix(".tmp")
    staging.write_text(str(Path(index_dir).resolve()) + "\n")
    os.replace(staging, pointer)


def last_index() -> Path | None:
    pointer = data_root() / "last_index"
    if not pointer.is_file():
        return None
    path = Path(pointer.read_text().strip())
    return path if path.exists() else None


__all__ = ["cache_root", "data_root", "default_index_dir", "last_index", "remember_last_index"]
