"""`ragcompress index --rebuild` replaces only an index, and a refused run writes nothing into the user's
folder (issue 23, items 1 and 8a), through the real pipeline with the tiny compressor."""

from __future__ import annotations

import json

import pytest

from indexing.pipeline import IndexingError, index_corpus
from ragcompress.store import Store
from tests.indexing import pipeline_helpers as helpers
from tests.indexing.pipeline_helpers import CHUNK_TOKENS, OVERLAP, write_corpus

private_data_root, tiny_compressor_dir, tiny_models = (
    helpers.private_data_root,
    helpers.tiny_compressor_dir,
    helpers.tiny_models,
)


def run(corpus, index, models, **options):
    compressor, embedder = models
    options = {"chunk_tokens": CHUNK_TOKENS, "overlap": OVERLAP, "progress": False, **options}
    return index_corpus(corpus, index, model=compressor, embedder=embedder, **options)


def files(path):
    return {p.relative_to(path): p.read_bytes() if p.is_file() else None for p in sorted(path.rglob("*"))}


def test_a_web_app_folder_is_never_rebuilt_nor_locked(tmp_path, tiny_models):
    corpus = write_corpus(tmp_path / "corpus", ["bees"])
    app = tmp_path / "myapp"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text(json.dumps({"name": "My app", "start_url": "/"}))
    (app / "NOTES.txt").write_text("notes\n")
    (app / "src" / "main.js").write_text("main()\n")
    before = files(app)
    for rebuild in (True, False):
        with pytest.raises(IndexingError) as error:
            run(corpus, app, tiny_models, rebuild=rebuild)
        message = str(error.value)
        assert "\n" not in message and str(app) in message and "--index" in message, message
        assert "NOTES.txt" in message
        assert files(app) == before  # no writer.lock, nothing deleted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "myapp"]


def test_rebuild_of_the_current_folder_is_refused_cleanly(tmp_path, tiny_models, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus", ["bees"])
    run(corpus, tmp_path / "index", tiny_models)
    monkeypatch.chdir(tmp_path / "index")
    with pytest.raises(IndexingError, match="cd .* --index index"):  # was "Device or resource busy"
        run(corpus, ".", tiny_models, rebuild=True)
    monkeypatch.chdir(tmp_path)
    assert Store.open(tmp_path / "index").check() == []
    run(corpus, tmp_path / "index", tiny_models, rebuild=True)  # from outside, as the message says
    assert [d.doc_id for d in Store.open(tmp_path / "index").documents()] == ["bees"]


def test_a_rebuild_through_a_symlink_replaces_the_index_it_names_and_keeps_the_link(tmp_path, tiny_models):
    corpus = write_corpus(tmp_path / "corpus", ["bees", "trains"])
    target, link = tmp_path / "indexes" / "v1", tmp_path / "current"
    run(corpus, target, tiny_models, vector_dtype="int8")
    link.symlink_to(target, target_is_directory=True)
    run(corpus, link, tiny_models, rebuild=True)
    assert link.is_symlink() and link.resolve() == target.resolve()
    with Store.open(link) as store:
        assert store.manifest.vector_dtype == "fp16" and len(store.documents()) == 2 and store.check() == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["v1"]  # no stale copy left beside it
