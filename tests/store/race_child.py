"""Children for the store race tests (run in the forkserver that tests.store.writer_child preloads)."""

from __future__ import annotations

from pathlib import Path

import tests.store.writer_child  # noqa: F401  (sets up the bare ragcompress package first)
from ragcompress.store import Store, StoreError
from tests.store.helpers import add, make_doc, make_manifest


def build_new(path: str, i: int, barrier, results) -> None:
    """Create (or join) the store at ``path`` and add one document, starting with the other child."""
    barrier.wait(30)
    try:
        store = Store.open_or_create(Path(path), make_manifest("int8"))
        try:
            with store.begin_update() as writer:
                add(writer, make_doc(i))
        finally:
            store.close()
        results.put("built")
    except StoreError as error:
        results.put(str(error))
