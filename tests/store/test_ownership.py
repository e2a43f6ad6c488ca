"""What a rebuild may replace and delete: only a folder that is provably a store, and in it only the files
the store wrote (issue 23, items 1, 8a and 8b)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ragcompress.store import Store, StoreError, StoreLockedError
from ragcompress.store.layout import create_fresh, is_store
from tests.store import race_child
from tests.store.helpers import add, build, make_doc, make_manifest


def web_app(path):
    """A folder that merely holds a file named manifest.json."""
    (path / "src").mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"name": "My app", "icons": [], "start_url": "/"}))
    (path / "NOTES.txt").write_text("my notes\n")
    (path / "src" / "app.js").write_text("console.log('hi')\n")
    return {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def contents(path):
    return {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_rebuild_refuses_a_folder_that_only_holds_a_manifest_json(tmp_path):
    app = tmp_path / "myapp"
    before = web_app(app)
    assert not is_store(app)
    for attempt in (
        lambda: Store.create(app, make_manifest(), overwrite=True),
        lambda: Store.open_or_create(app, make_manifest(), rebuild=True),
    ):
        with pytest.raises(StoreError) as error:
            attempt()
        assert str(app) in one_line(error) and "choose another --index" in str(error.value)
    with pytest.raises(StoreError, match="not a ragcompress"):
        Store.open_or_create(app, make_manifest())
    # Nothing written into the user's folder (no writer.lock) and nothing beside it.
    assert contents(app) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["myapp"]


def test_rebuild_refuses_an_index_holding_files_it_did_not_create(tmp_path):
    path = tmp_path / "s"
    build(path, [make_doc(0)]).close()
    (path / "NOTES.txt").write_text("mine\n")
    (path / "vectors" / "keep.bin").write_bytes(b"x")
    with pytest.raises(StoreError) as error:
        Store.create(path, make_manifest(), overwrite=True)
    assert "NOTES.txt" in one_line(error) and "vectors/keep.bin" in str(error.value)
    assert (path / "NOTES.txt").exists() and len(Store.open(path).documents()) == 1


def test_a_file_put_into_the_index_during_a_rebuild_survives_it(tmp_path):
    path = tmp_path / "s"
    build(path, [make_doc(0)]).close()
    rebuild = Store.create(path, make_manifest(), overwrite=True)
    (path / "NOTES.txt").write_text("written while the rebuild ran\n")
    with rebuild.begin_update() as writer:
        add(writer, make_doc(1))
    assert [d.doc_id for d in Store.open(path).documents()] == ["doc001"]
    kept = tmp_path / ".s.old"  # the old store's files are gone; the user's file and its folder stay
    assert sorted(p.name for p in kept.iterdir()) == ["NOTES.txt"]


def test_rebuild_recognises_older_and_damaged_stores(tmp_path):
    legacy = tmp_path / "legacy"  # written before manifests carried the format marker
    build(legacy, [make_doc(0)]).close()
    data = json.loads((legacy / "manifest.json").read_text())
    del data["format"]
    (legacy / "manifest.json").write_text(json.dumps(data))
    assert is_store(legacy) and len(Store.open(legacy).documents()) == 1

    damaged = tmp_path / "damaged"  # the metadata still proves it is ours
    build(damaged, [make_doc(0)]).close()
    (damaged / "manifest.json").write_text("{ truncated")
    for path in (legacy, damaged):
        with Store.create(path, make_manifest(), overwrite=True).begin_update() as writer:
            add(writer, make_doc(5))
        assert [d.doc_id for d in Store.open(path).documents()] == ["doc005"]


def test_rebuild_from_inside_the_index_is_refused_cleanly(tmp_path, monkeypatch):
    path = tmp_path / "s"
    build(path, [make_doc(0)]).close()
    monkeypatch.chdir(path)
    with pytest.raises(StoreError) as error:  # it used to die with "Device or resource busy"
        Store.open_or_create(".", make_manifest(), rebuild=True)
    assert f"cd {tmp_path}" in one_line(error) and "--index s" in str(error.value)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    monkeypatch.chdir(tmp_path)
    assert len(Store.open(path).documents()) == 1 and Store.open(path).check() == []


def test_the_loser_of_two_first_builds_names_the_other_writer(tmp_path):
    path = tmp_path / "new"
    winner = Store.create(path, make_manifest())  # holds the writer lock from the moment it exists
    # The loser checked before the winner's rename, so it tries to create the store too.
    with pytest.raises(StoreLockedError) as error:
        create_fresh(path, make_manifest())
    assert f"pid {os.getpid()}" in one_line(error) and "not an empty" not in str(error.value)
    with winner.begin_update() as writer:
        add(writer, make_doc(0))
    winner.close()
    assert len(Store.open(path).documents()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_a_new_stores_lock_passes_to_its_first_writer_without_a_gap(tmp_path, monkeypatch):
    """The race CI met: the creator let its lock go for a moment inside begin_update(); the other creator's
    check took it right then, and the creator's writer failed with "being written by another process"."""
    from ragcompress.store import lock as lock_module

    path = tmp_path / "new"
    store = Store.create(path, make_manifest())
    real_acquire, probes = lock_module.WriterLock.acquire, []

    def acquire_with_a_rival_checking(self):
        if not probes:  # the writer's acquire: the rival creator's check lands at this very moment
            rival = lock_module.WriterLock(path)
            try:
                real_acquire(rival)
                probes.append("rival got the lock")  # the gap: the store's own writer now fails
            except StoreLockedError:
                probes.append("rival refused")
        return real_acquire(self)

    monkeypatch.setattr(lock_module.WriterLock, "acquire", acquire_with_a_rival_checking)
    with store.begin_update() as writer:
        add(writer, make_doc(0))
    store.close()
    assert probes in ([], ["rival refused"])
    assert len(Store.open(path).documents()) == 1


def test_two_processes_building_one_new_index_at_once(tmp_path, fork_context):
    for attempt in range(3):
        path = tmp_path / f"new{attempt}"
        barrier = fork_context.Barrier(2)
        results = fork_context.Queue()
        children = [
            fork_context.Process(target=race_child.build_new, args=(str(path), i, barrier, results))
            for i in range(2)
        ]
        for child in children:
            child.start()
        outcomes = [results.get(timeout=60) for _ in children]
        for child in children:
            child.join(30)
        assert any(outcome == "built" for outcome in outcomes), outcomes
        for outcome in outcomes:
            assert (
                outcome == "built"
                or "being written by another process" in outcome
                or ("created by another process" in outcome)
            ), outcomes
        assert Store.open(path).check() == []
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
        shutil.rmtree(path)
