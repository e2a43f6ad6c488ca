"""Where things live in a store directory, how one is created, and how a rebuild replaces one.

Creation builds the whole directory under a hidden sibling name and renames it into place, so a
directory with ``manifest.json`` is always a complete, openable store.

A rebuild (``Store.create(..., overwrite=True)``) builds the new store in ``.NAME.rebuild`` while holding
the old store's writer lock, committing there as often as it likes. When its writer finishes, it swaps
the directories:
    1. rename NAME → .NAME.old      2. rename .NAME.rebuild → NAME      3. delete .NAME.old
Step 2 is the commit point of the rebuild. A crash before step 1 leaves the old store untouched, and the
next rebuild with the same settings starts from the sibling's commits (one with other settings, or with
none committed, deletes it); a crash between 1 and 2 leaves ``.NAME.old``, which readers open in place
and the next writer renames back; a crash after 2 leaves only garbage to delete.

Nothing here deletes a path the store did not create: a rebuild replaces only a folder that
``ownership.not_ours_reason`` proves to be a store, and every removal goes through
``ownership.remove_store_dir``, which unlinks only the names a store writes.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
from pathlib import Path

import numpy as np

from ragcompress.store.check import missing_shards
from ragcompress.store.errors import StoreError, StoreFormatError, StoreLockedError
from ragcompress.store.faiss_index import FAISS_NAME, VectorIndex
from ragcompress.store.fsutil import fsync_dir
from ragcompress.store.lock import LOCK_NAME, WriterLock
from ragcompress.store.manifest import (
    MANIFEST_NAME,
    Manifest,
    ensure_compatible,
    read_manifest,
    write_manifest,
)
from ragcompress.store.meta import META_NAME, MetaDB
from ragcompress.store.ownership import manifest_state, not_ours_reason, remove_store_dir
from ragcompress.store.shards import VECTORS_DIR

log = logging.getLogger(__name__)


def sibling(path: Path, tag: str) -> Path:
    # Absolute and normalised first: for "." or "idx/.." the name would be empty or "..".
    path = Path(os.path.abspath(path))
    return path.parent / f".{path.name}.{tag}"


def is_store(path: Path) -> bool:
    """Whether ``path`` holds a store: a manifest of ours, or a damaged one in a folder proven ours."""
    state = manifest_state(Path(path))
    return state == "ours" or (state == "unreadable" and not_ours_reason(Path(path)) is None)


def check_target(path: Path, rebuild: bool) -> None:
    """Refuse, before anything is written, an ``--index`` that is not new, an empty folder or a store.

    With ``rebuild`` the store must be provably ours, since the rebuild deletes it once it commits."""
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path} is a file, not a folder; choose another --index")
    if not path.exists():
        return
    empty = not any(path.iterdir())
    if rebuild and not empty:
        reason = not_ours_reason(path)
        if reason is not None:
            raise StoreError(
                f"--rebuild refuses to replace {path}: {reason}; "
                "move those files out if it is an index, or choose another --index"
            )
    elif not empty and not is_store(path):
        if not_ours_reason(path) is None:
            raise _damaged(path)
        raise StoreError(
            f"{path} is not a ragcompress index ({not_ours_reason(path)}); nothing was changed: "
            "choose a new or empty folder for --index"
        )
    if rebuild or empty:
        refuse_if_inside(path)


def refuse_if_inside(path: Path) -> None:
    """Creating or rebuilding a store renames its folder; a process sitting inside it would be stranded
    in the replaced (deleted) folder, and renaming "." itself fails with "Device or resource busy"."""
    try:
        cwd, target = Path.cwd().resolve(), Path(path).resolve()
    except (OSError, RuntimeError):
        return
    if cwd == target or target in cwd.parents:
        raise StoreError(
            f"cannot build the index {target} from inside it (the folder is replaced as a whole); "
            f"cd {target.parent} and re-run with --index {target.name}"
        )


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


def create_fresh(path: Path, manifest: Manifest) -> WriterLock:
    """Create a store at ``path``, which must not exist or be an empty directory.

    Returns the new store's writer lock, held from before the store appears at ``path``: a second
    process creating the same store at the same moment then names this one as the writer."""
    check_target(path, rebuild=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = sibling(path, f"creating-{os.getpid()}-{secrets.token_hex(4)}")
    initialise(staging, manifest)
    lock = WriterLock(staging)
    lock.acquire()  # flock follows the file's inode through the rename below
    try:
        # rename() onto an empty directory replaces it; onto a non-empty one it fails: no clobbering.
        os.rename(staging, path)
    except OSError:
        lock.release()
        remove_store_dir(staging)
        _refuse_lost_race(path)
    lock.path = Path(path) / LOCK_NAME
    fsync_dir(Path(os.path.abspath(path)).parent)
    return lock


def _refuse_lost_race(path: Path) -> None:
    if not is_store(path):
        check_target(path, rebuild=False)  # says why the folder is not ours
        raise StoreError(f"{path} is not an empty folder; choose a new or empty folder for --index")
    with WriterLock(path):  # raises StoreLockedError naming the other writer while it works
        pass
    raise StoreLockedError(
        f"{path} was created by another process at the same moment; "
        "run again once it has finished to add to that index"
    )


def start_rebuild(path: Path, manifest: Manifest) -> tuple[Path, WriterLock]:
    """Build an empty replacement for the store at ``path``; returns it and the old store's held lock."""
    check_target(path, rebuild=True)  # before the lock: taking it writes writer.lock into the folder
    old = sibling(path, "old")
    left = remove_store_dir(old)  # finish_interrupted_swap kept it only if something foreign is inside
    if left:
        raise StoreError(
            f"{old} is left from an earlier rebuild and holds files the index did not create "
            f"({', '.join(left)}); move them out of it, then run again"
        )
    old_lock = WriterLock(path)
    old_lock.acquire()  # no one may write the old store while its replacement is being built
    staging = sibling(path, "rebuild")
    try:
        if _resumable(staging, manifest):
            log.info("going on with the rebuild of %s that stopped part-way (%s)", path, staging)
            return staging, old_lock
        left = remove_store_dir(staging)  # a rebuild that committed nothing, or with other settings
        if left:
            raise StoreError(
                f"{staging} holds files the index did not create ({', '.join(left)}); "
                "move it away, then run again"
            )
        initialise(staging, manifest)
    except BaseException:
        old_lock.release()
        raise
    return staging, old_lock


def _resumable(staging: Path, manifest: Manifest) -> bool:
    """Whether ``staging`` holds commits of an unfinished rebuild made with ``manifest``'s settings."""
    if manifest_state(staging) != "ours" or not_ours_reason(staging) is not None:
        return False
    try:
        ensure_compatible(read_manifest(staging), manifest, staging)
        meta = MetaDB(staging / META_NAME, readonly=True)
        try:
            return meta.generation() > 0 and not missing_shards(staging, meta)
        finally:
            meta.close()
    except (StoreError, OSError, sqlite3.Error):
        return False  # other settings, or damaged: started over


def swap_in(staging: Path, path: Path) -> None:
    """Replace the store at ``path`` by the committed one at ``staging`` (caller holds both locks)."""
    old = sibling(path, "old")
    os.rename(path, old)
    os.rename(staging, path)  # the commit point of a rebuild
    fsync_dir(old.parent)
    _drop_old(old)


def _drop_old(old: Path) -> None:
    left = remove_store_dir(old)
    if left:
        # Put there while the rebuild ran; never ours to delete.
        log.warning("kept %s: it holds %s, which the index did not create", old, ", ".join(left))


def readable_directory(path: Path) -> Path:
    """The directory that holds the last committed state of the store named ``path``."""
    if is_store(path):
        return path
    old = sibling(path, "old")
    if not path.exists() and is_store(old):
        return old  # a rebuild swap was interrupted between its two renames
    reason = not_ours_reason(path) if path.exists() else "it does not exist"
    if reason is None:  # only names an index writes, but no manifest: one of ours, damaged
        raise _damaged(path)
    raise StoreFormatError(f"{path} is not a ragcompress store ({reason})")


def _damaged(path: Path) -> StoreFormatError:
    """For a folder holding only what an index writes, but no manifest: ours, damaged."""
    return StoreFormatError(
        f"{path} is a damaged ragcompress index (no {MANIFEST_NAME}); re-run with --rebuild"
    )


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
            fsync_dir(old.parent)
        else:
            _drop_old(old)  # the rebuild committed; this is leftover
    finally:
        lock.release()
