"""Where things live in a store directory, how one is created, and how a rebuild replaces one.

Creation builds the whole directory under a hidden sibling name and renames it into place, so a
directory with ``manifest.json`` is always a complete, openable store.

A rebuild (``Store.create(..., overwrite=True)``) builds the new store in ``.NAME.rebuild`` while holding
the old store's writer lock. Its first commit swaps the directories:
    1. rename NAME → .NAME.old      2. rename .NAME.rebuild → NAME      3. delete .NAME.old
Step 2 is the commit point of the rebuild. A crash before step 1 leaves the old store untouched (the
half-built sibling is deleted by the next rebuild); a crash between 1 and 2 leaves ``.NAME.old``, which
readers open in place and the next writer renames back; a crash after 2 leaves only garbage to delete.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import numpy as np

from ragcompress.store.errors import StoreError, StoreFormatError
from ragcompress.store.faiss_index import FAISS_NAME, VectorIndex
from ragcompress.store.fsutil import fsync_dir
from ragcompress.store.lock import WriterLock
from ragcompress.store.manifest import MANIFEST_NAME, Manifest, write_manifest
from ragcompress.store.meta import META_NAME, MetaDB
from ragcompress.store.shards import VECTORS_DIR


def sibling(path: Path, tag: str) -> Path:
    return path.parent / f".{path.name}.{tag}"


def is_store(path: Path) -> bool:
    return (path / MANIFEST_NAME).is_file()


def initialise(directory: Path, manifest: Manifest) -> None:
    """Write an empty store into the new directory ``directory``; the manifest goes last."""
    directory.mkdir(parents=True)
    (directory / VECTORS_DIR).mkdir()
    MetaDB.create(directory / META_NAME).close()
    dim = manifest.embedder.dim
    empty = VectorIndex.build(manifest.faiss, dim, np.zeros(0, np.int64), np.zeros((0, dim), np.float32))
    empty.save(directory / FAISS_NAME)
    write_manifest(directory, manifest)
    fsync_dir(directory)


def create_fresh(path: Path, manifest: Manifest) -> None:
    """Create a store at ``path``, which must not exist or be an empty directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = sibling(path, f"creating-{os.getpid()}-{secrets.token_hex(4)}")
    initialise(staging, manifest)
    try:
        # rename() onto an empty directory replaces it; onto a non-empty one it fails: no clobbering.
        os.rename(staging, path)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise StoreError(
            f"{path} already exists and is not an empty directory; choose another path or rebuild"
        ) from None
    fsync_dir(path.parent)


def start_rebuild(path: Path, manifest: Manifest) -> tuple[Path, WriterLock]:
    """Build an empty replacement for the store at ``path``; returns it and the old store's held lock."""
    old_lock = WriterLock(path)
    old_lock.acquire()  # no one may write the old store while its replacement is being built
    staging = sibling(path, "rebuild")
    try:
        shutil.rmtree(staging, ignore_errors=True)  # a rebuild that never committed
        initialise(staging, manifest)
    except BaseException:
        old_lock.release()
        raise
    return staging, old_lock


def swap_in(staging: Path, path: Path) -> None:
    """Replace the store at ``path`` by the committed one at ``staging`` (caller holds both locks)."""
    old = sibling(path, "old")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(path, old)
    os.rename(staging, path)  # the commit point of a rebuild
    fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)


def readable_directory(path: Path) -> Path:
    """The directory that holds the last committed state of the store named ``path``."""
    if is_store(path):
        return path
    old = sibling(path, "old")
    if not path.exists() and is_store(old):
        return old  # a rebuild swap was interrupted between its two renames
    raise StoreFormatError(f"{path} is not a ragcompress store (no {MANIFEST_NAME})")


def finish_interrupted_swap(path: Path) -> None:
    """Undo or clean up after a rebuild swap that a crash interrupted (needs write access)."""
    old = sibling(path, "old")
    if not old.exists():
        return
    lock = WriterLock(old)
    if is_store(old):
        lock.acquire()  # refuses while a live rebuild is mid-swap
    try:
        if not path.exists():
            os.rename(old, path)  # the rebuild never reached its commit point: keep the old store
            fsync_dir(path.parent)
        else:
            shutil.rmtree(old, ignore_errors=True)  # the rebuild committed; this is leftover
    finally:
        lock.release()
