"""Shared by the resume and fault-injection tests: a corpus (two versions) with one long document, tiny
models that make an indexing process cheap, in-process builds, and the checks run after every kill.

Commit groups are kept small (``OPTIONS``, and no growth with throughput) so that a few dozen chunks
give many commits and the long document is committed in several pieces.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from indexing import write
from indexing.pipeline import IndexReport, index_corpus
from ragcompress.store import Store
from ragcompress.store.writer import PARTIAL
from tests.indexing.cli_app import app
from tests.indexing.pipeline_helpers import (
    CHUNK_TOKENS,
    OVERLAP,
    TOPICS,
    assert_same_store,
    snapshot,
    topic_text,
    write_corpus,
)

LONG = "long.txt"
OPTIONS = {"commit_every": 2, "commit_chunks": 5}


def long_text(version: int, sections: int = 20) -> str:
    """About 17 chunks of text; version 2 rewrites the second half."""
    sentences = [sentence for topic in TOPICS.values() for sentence in topic]
    parts = []
    for i in range(sections):
        rng = random.Random(f"{i}-{version if i >= sections // 2 else 1}")
        parts.append(f"Section {i}. " + " ".join(rng.sample(sentences, 3)))
    return "\n\n".join(parts) + "\n"


def write_version(root: Path, version: int) -> Path:
    """Version 1: six topic documents and a long one. Version 2 (written over version 1): a topic
    document changed, one deleted, one added, and the long document's second half rewritten."""
    if version == 1:
        write_corpus(root)
    else:
        (root / "baking.txt").write_text(topic_text("baking", seed=1), encoding="utf-8")
        (root / "chess.txt").unlink()
        write_corpus(root, ["trains"], seed=2, suffix="-2")
    (root / LONG).write_text(long_text(version), encoding="utf-8")
    return root


def load_models(compressor_dir: Path, embedder_dir: Path):
    """The tiny models loaded here, as ``index_corpus`` takes them; their manifest ids are the paths, as
    a child process that loads them by path records them."""
    from ragcompress.loading import load_compressor, load_embedder

    return load_compressor(str(compressor_dir), device="cpu"), load_embedder(str(embedder_dir), device="cpu")


def build(corpus: Path, index: Path, models, **options) -> IndexReport:
    """An uninterrupted in-process run with the tests' small commit groups."""
    compressor, embedder = models
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(write, "TARGET_COMMIT_SECONDS", 0.0)
        return index_corpus(
            corpus,
            index,
            model=compressor,
            embedder=embedder,
            chunk_tokens=CHUNK_TOKENS,
            overlap=OVERLAP,
            progress=False,
            **{**OPTIONS, **options},
        )


@pytest.fixture(scope="session")
def fast_models(tiny_compressor_dir, tiny_embedder_dir):
    return load_models(tiny_compressor_dir, tiny_embedder_dir)


@pytest.fixture(scope="session")
def clean_builds(tmp_path_factory, fast_models) -> dict[int, dict]:
    """Snapshots of uninterrupted runs: version 1 built, then updated to version 2."""
    root = tmp_path_factory.mktemp("clean")
    snapshots = {}
    for version in (1, 2):
        build(write_version(root / "corpus", version), root / "index", fast_models)
        snapshots[version] = observe(root / "index")
    return snapshots


def child_options(embedder_dir: Path, **extra) -> dict:
    """``index_child`` options for the same run in a child process."""
    return {**OPTIONS, "embedder": str(embedder_dir), "small_groups": True, **extra}


def observe(index: Path) -> dict:
    with Store.open(index) as store:
        return snapshot(store)


def assert_check_passes(index: Path) -> None:
    result = CliRunner().invoke(app, ["info", str(index), "--check"])
    assert result.exit_code == 0 and "check: OK" in result.output, result.output


def assert_consistent(index: Path, versions: list[dict]) -> dict:
    """What a killed run left: `info --check` passes, and each document is one a clean build of one of
    ``versions`` holds — whole, or (status partial) the first chunks of a long one — with the same
    text and, to fp tolerance, the same vectors. Returns the store's snapshot."""
    assert_check_passes(index)
    now = observe(index)
    with Store.open(index) as store:
        status = {doc.doc_id: doc.status for doc in store.documents()}
    for doc_id, (path, content_hash, n_chunks, _, metadata) in now["documents"].items():
        clean = next((v for v in versions if v["documents"].get(doc_id, (0, 0))[1] == content_hash), None)
        assert clean is not None, f"{doc_id} in no clean build"
        clean_path, _, whole, _, clean_metadata = clean["documents"][doc_id]
        assert (path, metadata) == (clean_path, clean_metadata), doc_id
        if status[doc_id] == PARTIAL:
            assert 0 < n_chunks < whole, doc_id
        else:
            assert n_chunks == whole, doc_id
        for ordinal in range(n_chunks):
            key = (doc_id, ordinal)
            assert now["chunks"][key] == clean["chunks"][key], key
            torch.testing.assert_close(now["vectors"][key], clean["vectors"][key], atol=1e-3, rtol=1e-3)
    assert len(now["chunks"]) == sum(doc[2] for doc in now["documents"].values())  # no stray chunk
    return now


def assert_same_as_clean(index: Path, clean: dict) -> None:
    """The resumed store equals the clean build: documents (all whole), chunks, ids, vectors, search."""
    assert_check_passes(index)
    resumed = observe(index)
    assert_same_store(resumed, clean)
    assert resumed["ids"] == clean["ids"]  # chunk ids continue exactly: nothing lost or duplicated
    with Store.open(index) as store:
        assert {doc.status for doc in store.documents()} == {"indexed"}
        shards = {row["name"] for row in store._state.meta.shard_rows()}
    assert {p.name for p in (index / "vectors").iterdir()} == shards  # no leftover of a killed run
