"""A re-run with nothing to do loads no model, and a long document is committed in pieces that a killed
run keeps and the next run continues from (issue 23, items 8c and 8d)."""

from __future__ import annotations

import contextlib
import os
import re
import signal

import pytest
from typer.testing import CliRunner

from indexing.engines import worker as worker_module
from indexing.pipeline import index_corpus
from ragcompress.store import Store, StoreError, StoreMismatchError
from ragcompress.store.writer import PARTIAL
from tests.indexing import fault_helpers
from tests.indexing import pipeline_helpers as helpers
from tests.indexing.cli_app import app
from tests.indexing.fault_helpers import (
    LONG,
    assert_consistent,
    assert_same_as_clean,
    build,
    child_options,
    long_text,
    observe,
)
from tests.indexing.index_child import TIMEOUT, start_indexing, wait_for_commits
from tests.indexing.pipeline_helpers import CHUNK_TOKENS, OVERLAP, write_corpus
from tests.store.helpers import make_doc, make_manifest

private_data_root, tiny_compressor_dir = helpers.private_data_root, helpers.tiny_compressor_dir
tiny_embedder_dir, fast_models = helpers.tiny_embedder_dir, fault_helpers.fast_models


class Loaded(Exception):
    """Raised instead of loading a model."""


@contextlib.contextmanager
def loading_refused():
    """Loading a model raises ``Loaded`` inside this block."""

    def load_models(*args):
        raise Loaded

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker_module, "load_models", load_models)
        yield


def by_spec(corpus, index, compressor_dir, embedder_dir, **options):
    """A run that names its models, as the CLI does, so it is the run that decides whether to load them."""
    return index_corpus(
        corpus,
        index,
        model=str(compressor_dir),
        embedder=str(embedder_dir),
        progress=False,
        **{"chunk_tokens": CHUNK_TOKENS, "overlap": OVERLAP, **options},
    )


def test_unchanged_rerun_loads_no_model(tmp_path, tiny_compressor_dir, tiny_embedder_dir):
    corpus, index = write_corpus(tmp_path / "corpus"), tmp_path / "index"
    first = by_spec(corpus, index, tiny_compressor_dir, tiny_embedder_dir)
    other = helpers.save_tiny_compressor(tmp_path / "other-compressor")
    cli = ["index", str(corpus), "--index", str(index), "--model", str(tiny_compressor_dir), "--embedder"]
    cli += [str(tiny_embedder_dir), "--chunk-tokens", str(CHUNK_TOKENS), "--overlap", str(OVERLAP)]

    with loading_refused():
        again = by_spec(corpus, index, tiny_compressor_dir, tiny_embedder_dir)
        assert (again.added, again.changed, again.removed, again.unchanged) == (0, 0, 0, 6)
        assert (again.chunks, again.commits, again.timings["load"]) == (0, 0, 0.0)
        assert (again.stats.documents, again.stats.chunks) == (6, first.stats.chunks)
        assert again.stats.generation == first.stats.generation  # nothing was committed
        result = CliRunner().invoke(app, [*cli, "--no-progress"])
        assert result.exit_code == 0, result.output
        assert re.search(r"documents unchanged\W+6\W", result.output) and "Traceback" not in result.output

        # A setting that differs from the index's is refused as before, still without loading a model.
        with pytest.raises(StoreMismatchError, match="vector dtype 'fp16', not 'int8'"):
            by_spec(corpus, index, tiny_compressor_dir, tiny_embedder_dir, vector_dtype="int8")
        with pytest.raises(StoreMismatchError, match="chunking"):
            by_spec(corpus, index, tiny_compressor_dir, tiny_embedder_dir, overlap=OVERLAP + 1)
        # Work, or models that only loading can compare, still load them.
        with pytest.raises(Loaded):
            by_spec(corpus, index, other, tiny_embedder_dir)
        (corpus / "bees.txt").write_text("Bees changed their minds.\n", encoding="utf-8")
        with pytest.raises(Loaded):
            by_spec(corpus, index, tiny_compressor_dir, tiny_embedder_dir)


def test_killed_long_document_resumes_where_it_stopped(
    tmp_path, fork_context, fast_models, tiny_compressor_dir, tiny_embedder_dir
):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / LONG).write_text(long_text(1), encoding="utf-8")
    build(corpus, tmp_path / "clean", fast_models)
    clean = observe(tmp_path / "clean")
    total = len(clean["chunks"])
    assert total > 3 * fault_helpers.OPTIONS["commit_chunks"]  # one document, at least four commits

    child, conn = start_indexing(
        fork_context, corpus, index, tiny_compressor_dir, options=child_options(tiny_embedder_dir)
    )
    wait_for_commits(child, conn, 2)
    os.kill(child.pid, signal.SIGKILL)  # lands while the next piece is computed or committed
    child.join(TIMEOUT)
    assert child.exitcode == -signal.SIGKILL
    with Store.open(index) as store:
        [doc] = store.documents()
    # Readers see a consistent store: the document marked partial, holding its first chunks only.
    assert doc.status == PARTIAL and 2 * fault_helpers.OPTIONS["commit_chunks"] <= doc.n_chunks < total
    assert_consistent(index, [clean])

    with loading_refused(), pytest.raises(Loaded):  # a partial document is work: the models are needed
        by_spec(corpus, index, tiny_compressor_dir, tiny_embedder_dir)
    resumed = build(corpus, index, fast_models)
    assert (resumed.added, resumed.changed, resumed.unchanged) == (1, 0, 0)
    assert resumed.chunks == total - doc.n_chunks  # the chunks committed before the kill are not redone
    assert_same_as_clean(index, clean)


class Interrupted(Exception):
    pass


def test_changed_long_document_is_replaced_in_pieces(tmp_path, fast_models):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for version in (1, 2):  # the clean run: version 1, then the update to version 2, uninterrupted
        (corpus / LONG).write_text(long_text(version), encoding="utf-8")
        build(corpus, tmp_path / "clean", fast_models)
    clean = observe(tmp_path / "clean")
    (corpus / LONG).write_text(long_text(1), encoding="utf-8")
    build(corpus, index, fast_models)
    (corpus / LONG).write_text(long_text(2), encoding="utf-8")

    def stop_after_first(info):
        raise Interrupted  # as Ctrl-C would, right after the first piece of the new version committed

    with pytest.raises(Interrupted):
        build(corpus, index, fast_models, on_commit=stop_after_first)
    with Store.open(index) as store:
        [doc] = store.documents()
    # The old version is gone with the first piece of the new one: one version of a document, never two.
    assert doc.status == PARTIAL and doc.n_chunks == fault_helpers.OPTIONS["commit_chunks"]
    assert_consistent(index, [clean])
    resumed = build(corpus, index, fast_models)
    assert resumed.chunks == len(clean["chunks"]) - doc.n_chunks
    assert_same_as_clean(index, clean)


def test_append_continues_only_a_partial_document(tmp_path):
    store = Store.create(tmp_path / "store", make_manifest())
    doc = make_doc(2)  # three chunks
    parts = [(slice(0, 1), PARTIAL), (slice(1, 2), PARTIAL), (slice(2, 3), "indexed")]
    for number, (part, status) in enumerate(parts):
        with store.begin_update() as writer:
            writer.add_document(
                doc.doc_id,
                doc.path,
                doc.content_hash,
                doc.chunks[part],
                doc.embeddings[part],
                doc.vectors[part],
                status=status,
                append=number > 0,
            )
        stored = store.document(doc.doc_id)
        assert (stored.status, stored.n_chunks) == (status, number + 1)
        assert store.check() == []
    ids = [int(i) for i in store.chunk_ids()]
    assert [(c.ordinal, c.text) for c in store.get_chunks(ids)] == [
        (i, c.text) for i, c in enumerate(doc.chunks)
    ]
    with store.begin_update() as writer, pytest.raises(StoreError, match="not a partial document"):
        writer.add_document(doc.doc_id, doc.path, doc.content_hash, [], doc.embeddings[:0], [], append=True)
    store.close()
