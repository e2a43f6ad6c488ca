"""index_corpus in-process: round trip, incremental updates, refusals, bad inputs (tiny compressor, real
SmolLM2 tokenizer, real all-MiniLM-L6-v2 embedder)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from indexing import readers
from indexing.chunker import chunk_documents
from indexing.pipeline import EmptyCorpusError, IndexingError, index_corpus
from ragcompress.compressor import Compressor
from ragcompress.modeling import compress
from ragcompress.store import Store, StoreLockedError, StoreMismatchError
from tests.indexing import pipeline_helpers as helpers
from tests.indexing.pipeline_helpers import (
    CHUNK_TOKENS,
    OVERLAP,
    TINY_KAPPA,
    assert_same_store,
    snapshot,
    topic_text,
    write_corpus,
)

# Fixtures shared by the pipeline test modules (kept out of conftest.py, which the reader tests own).
private_data_root, tiny_compressor_dir, tiny_models = (
    helpers.private_data_root,
    helpers.tiny_compressor_dir,
    helpers.tiny_models,
)


def run(corpus: Path, index: Path, models, **options):
    compressor, embedder = models
    options = {"chunk_tokens": CHUNK_TOKENS, "overlap": OVERLAP, "progress": False, **options}
    return index_corpus(corpus, index, model=compressor, embedder=embedder, **options)


@pytest.fixture
def count_compressed(monkeypatch):
    """How many chunks went through compress() (the expensive step) since the fixture was made."""
    seen = []
    original = Compressor.compress

    def counting(self, chunks, **kwargs):
        seen.append(len(chunks))
        return original(self, chunks, **kwargs)

    monkeypatch.setattr(Compressor, "compress", counting)
    return lambda: sum(seen)


def test_round_trip(tmp_path, tiny_models):
    corpus = write_corpus(tmp_path / "corpus")
    report = run(corpus, tmp_path / "index", tiny_models, commit_every=2)
    (model, tokenizer, info), (embedder, _) = tiny_models

    documents = readers.read_corpus(corpus).documents
    expected = chunk_documents(documents, tokenizer, CHUNK_TOKENS, OVERLAP)
    assert (report.added, report.changed, report.removed, report.unchanged) == (6, 0, 0, 0)
    assert report.chunks == len(expected) >= 12 and report.commits == 3
    assert report.tokens == sum(c.n_tokens for c in expected)

    store = Store.open(tmp_path / "index")
    assert store.check() == []
    assert store.manifest.compressor.id == info.id and store.manifest.compressor.summary_length == TINY_KAPPA
    assert store.manifest.embedder.dim == 384
    assert store.stats().chunks == len(expected) and report.stats.documents == 6
    ids = [int(i) for i in store.chunk_ids()]
    stored = store.get_chunks(ids)
    assert [(c.doc_id, c.ordinal, c.text, c.char_start, c.char_end) for c in stored] == [
        (c.doc_id, c.ordinal, c.text, c.char_start, c.char_end) for c in expected
    ]
    # The stored vectors are compress() of the chunk's own token ids (no BOS added), up to fp16 storage.
    reference = compress(model, [c.token_ids for c in expected], batch_size=1)
    for got, want in zip(store.get_vectors(ids), reference):
        assert got.shape == (TINY_KAPPA, 32)
        torch.testing.assert_close(got, want, atol=2e-3, rtol=2e-3)

    # A sentence from a document finds the one chunk that holds it.
    for query in ("Castling moves the king two squares", "Worker bees perform a waggle dance"):
        (holder,) = [c for c in expected if query in c.text]
        (hit, *_) = store.search(embedder.encode([query])[0], k=3)
        assert store.get_chunks([hit.chunk_id])[0].text == holder.text


def test_incremental_add_modify_delete(tmp_path, tiny_models, count_compressed):
    corpus = write_corpus(tmp_path / "corpus", ["rivers", "baking", "astronomy", "chess"])
    index = tmp_path / "index"
    run(corpus, index, tiny_models)
    generation = Store.open(index).stats().generation

    (corpus / "baking.txt").write_text(topic_text("baking", seed=1))  # changed
    (corpus / "chess.txt").unlink()  # deleted
    (corpus / "bees.txt").write_text(topic_text("bees"))  # new
    before = count_compressed()
    report = run(corpus, index, tiny_models)
    _, tokenizer, _ = tiny_models[0]
    docs = {d.doc_id: d for d in readers.read_corpus(corpus).documents}
    redone = chunk_documents([docs["baking"], docs["bees"]], tokenizer, CHUNK_TOKENS, OVERLAP)
    assert (report.added, report.changed, report.removed, report.unchanged) == (1, 1, 1, 2)
    assert report.chunks == len(redone) == count_compressed() - before  # only new and changed documents

    clean = tmp_path / "clean"
    run(corpus, clean, tiny_models)
    assert_same_store(snapshot(Store.open(index)), snapshot(Store.open(clean)))

    # Nothing changed: nothing compressed, nothing committed.
    before = count_compressed()
    report = run(corpus, index, tiny_models)
    assert (report.added, report.changed, report.removed, report.unchanged) == (0, 0, 0, 4)
    assert report.chunks == 0 and report.commits == 0 and count_compressed() == before
    assert Store.open(index).stats().generation == generation + 2  # one removal commit, one group


def test_other_settings_are_refused_until_rebuild(tmp_path, tiny_models):
    corpus = write_corpus(tmp_path / "corpus", ["rivers", "bees"])
    index = tmp_path / "index"
    run(corpus, index, tiny_models)
    with pytest.raises(StoreMismatchError, match="--rebuild"):
        run(corpus, index, tiny_models, vector_dtype="int8")
    with pytest.raises(StoreMismatchError, match="chunking"):
        run(corpus, index, tiny_models, chunk_tokens=96)
    report = run(corpus, index, tiny_models, vector_dtype="int8", rebuild=True)
    assert report.added == 2 and report.stats.vector_dtype == "int8"
    store = Store.open(index)
    assert store.manifest.vector_dtype == "int8" and store.check() == []


def test_a_second_writer_is_refused(tmp_path, tiny_models):
    corpus = write_corpus(tmp_path / "corpus", ["rivers"])
    index = tmp_path / "index"
    run(corpus, index, tiny_models)
    holder = Store.open(index, readonly=False)
    writer = holder.begin_update()
    try:
        with pytest.raises(StoreLockedError, match="another process"):
            run(corpus, index, tiny_models)
    finally:
        writer.close()
        holder.close()
    assert run(corpus, index, tiny_models).unchanged == 1  # free again once the writer is gone


def test_empty_corpus_creates_no_index(tmp_path, tiny_models):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "empty.txt").write_text("")
    (corpus / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(EmptyCorpusError, match="no readable documents"):
        run(corpus, tmp_path / "index", tiny_models)
    assert not (tmp_path / "index").exists()
    with pytest.raises(IndexingError, match="does not exist"):
        run(tmp_path / "missing", tmp_path / "index", tiny_models)


def test_bad_settings_fail_before_anything_loads(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", ["rivers"])
    for options, message in [
        ({"vector_dtype": "int4"}, "vector dtype"),
        ({"faiss_kind": "annoy"}, "faiss index kind"),
        ({"chunk_tokens": 8}, "too small"),
        ({"overlap": 600}, "overlap"),
        ({"batch_size": 0}, "batch_size"),
        ({"engine": "spark"}, "unknown engine"),
    ]:
        with pytest.raises(IndexingError, match=message):
            index_corpus(corpus, tmp_path / "index", progress=False, **options)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("not an index")
    with pytest.raises(
        IndexingError, match="not a ragcompress index .*notes.txt.*choose a new or empty folder"
    ):
        index_corpus(corpus, tmp_path / "taken", progress=False)
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]  # not even a writer.lock


def test_bad_files_are_skipped_and_reported(tmp_path, tiny_models, deny_reads):
    corpus = write_corpus(tmp_path / "corpus", ["trains"])
    (corpus / "blob.txt").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    (corpus / "noise.txt").write_bytes(bytes(range(128, 256)) * 30)
    (corpus / "empty.md").write_text("")
    (corpus / "locked.txt").write_text("secret")
    (corpus / "loop.txt").symlink_to("loop2.txt")
    (corpus / "loop2.txt").symlink_to("loop.txt")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "up").symlink_to("..", target_is_directory=True)
    deny_reads("locked.txt")
    report = run(corpus, tmp_path / "index", tiny_models)
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["blob.txt"] == "binary file"
    assert reasons["noise.txt"].startswith("not valid UTF-8")
    assert reasons["empty.md"] == "empty"
    assert reasons["locked.txt"] == "unreadable: Permission denied"
    assert reasons["loop.txt"] == reasons["loop2.txt"] == "symlink loop"
    assert reasons["sub/up"].startswith("symlink loop")
    assert report.added == 1 and Store.open(tmp_path / "index").stats().documents == 1


def test_an_index_inside_its_corpus_is_not_read_as_documents(tmp_path, tiny_models):
    corpus = write_corpus(tmp_path / "corpus", ["bees"])
    run(corpus, corpus / "index", tiny_models)
    again = run(corpus, corpus / "index", tiny_models)
    assert again.skipped == [] and again.unchanged == 1 and again.chunks == 0
