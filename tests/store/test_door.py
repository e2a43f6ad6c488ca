"""``Store`` as the one door to a built index, and the store package's one-way imports."""

import ast
from pathlib import Path

import pytest

import ragcompress.store as store_package
from ragcompress.store import VECTOR_DTYPES, Store, StoreError, StoreFormatError, StoreLockedError
from ragcompress.store.check import SAFETENSORS_DTYPES
from ragcompress.store.quantize import STORAGE_DTYPES
from tests.store.helpers import build, make_doc, make_manifest

STORE_DIR = Path(store_package.__file__).parent


def _module_imports(path: Path) -> set[str]:
    """Every ragcompress.store module a file imports, at any depth of the file (functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ragcompress.store."):
            found.add(node.module.rsplit(".", 1)[1])
    return found


def test_imports_run_one_way_store_writer_state():
    assert "writer" in _module_imports(STORE_DIR / "store.py")
    assert "state" in _module_imports(STORE_DIR / "writer.py")
    assert "store" not in _module_imports(STORE_DIR / "writer.py")
    assert not {"store", "writer"} & _module_imports(STORE_DIR / "state.py")
    # No module of the package imports store.py but the package's __init__.
    users = [
        p.name for p in STORE_DIR.glob("*.py") if p.name != "__init__.py" and "store" in _module_imports(p)
    ]
    assert users == []


def test_one_list_of_vector_dtypes():
    assert VECTOR_DTYPES == ("fp16", "bf16", "int8", "fp8")
    assert tuple(STORAGE_DTYPES) == tuple(SAFETENSORS_DTYPES) == VECTOR_DTYPES
    with pytest.raises(
        StoreFormatError, match=r"vector_dtype 'int4' not one of \('fp16', 'bf16', 'int8', 'fp8'\)"
    ):
        make_manifest("int4")


def test_the_door_answers_what_callers_used_to_ask_the_layout(tmp_path):
    path = tmp_path / "s"
    assert not Store.exists(path)
    Store.probe_writable(path)  # a new folder: fine, and nothing is written
    assert not path.exists()
    docs = [make_doc(i) for i in range(3)]
    built = build(path, docs)
    assert Store.exists(path) and Store.check_path(path) == []
    with Store.open(path) as store:
        ids = store.chunk_ids()
        assert ids.tolist() == sorted(ids.tolist()) and len(ids) == sum(len(d.chunks) for d in docs)
        assert [c.chunk_id for c in store.get_chunks(ids.tolist())] == ids.tolist()
        assert [d.doc_id for d in store.documents()] == [d.doc_id for d in docs]
        assert not any(d.partial for d in store.documents())
    writer = built.begin_update()
    try:
        with pytest.raises(StoreLockedError):
            Store.probe_writable(path)  # another writer holds it: refused at once
    finally:
        writer.close()
    Store.probe_writable(path)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "a.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a ragcompress"):
        Store.probe_writable(other)
    assert sorted(p.name for p in other.iterdir()) == ["a.txt"]  # not even a lock file
    assert Store.check_path(other)  # a folder that will not open: problems, not an exception
