"""`ragcompress index` and `ragcompress info` through typer's CliRunner: output, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
import typer.main
from typer.testing import CliRunner

from ragcompress.paths import last_index
from ragcompress.store import VECTOR_DTYPES, Store
from tests.indexing import pipeline_helpers as helpers
from tests.indexing.cli_app import app
from tests.indexing.pipeline_helpers import write_corpus

private_data_root, tiny_compressor_dir = helpers.private_data_root, helpers.tiny_compressor_dir
runner = CliRunner()
SETTINGS = ("--chunk-tokens", 64, "--overlap", 8)  # the `built` index's chunking


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_compressor_dir):
    """An index of a small corpus built once through the CLI (tiny compressor)."""
    root = tmp_path_factory.mktemp("cli")
    corpus = write_corpus(root / "corpus", ["rivers", "bees", "trains"])
    (corpus / "blob.txt").write_bytes(b"\x00binary\x00" * 20)
    index = root / "index"
    result = invoke(
        "index",
        corpus,
        "--index",
        index,
        "--model",
        tiny_compressor_dir,
        *SETTINGS,
    )
    return corpus, index, result


def test_index_prints_a_summary_and_where_the_index_went(built):
    corpus, index, result = built
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"index written to {index}" in out
    for row in ("documents added │ 3", "files skipped │ 1", "chunks/s", "bytes per text token"):
        assert row in out
    assert "blob.txt: binary file" in out


def test_index_remembers_the_last_index(tmp_path, tiny_compressor_dir):
    corpus = write_corpus(tmp_path / "corpus", ["chess"])
    index = tmp_path / "index"
    assert (
        invoke("index", corpus, "--index", index, "--model", tiny_compressor_dir, "--no-progress").exit_code
        == 0
    )
    assert last_index() == index.resolve()
    info = invoke("info", "--json")  # no DIR: the last index
    assert info.exit_code == 0 and json.loads(info.output)["documents"] == 1


def test_info_json_has_the_documented_keys(built):
    _, index, _ = built
    result = invoke("info", index, "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)  # exactly one JSON object
    assert data["documents"] == 3 and data["chunks"] >= 3 and data["tokens"] > 0
    assert data["bytes_per_token"] == pytest.approx(Store.open(index).stats().bytes_per_token)
    assert data["vector_dtype"] == "fp16" and data["embedder"]["dim"] == 384
    table = invoke("info", index)
    assert table.exit_code == 0 and "bytes per text token" in table.output


def test_info_check_passes_on_a_healthy_index_and_fails_on_a_corrupt_shard(tmp_path, built):
    _, index, _ = built
    healthy = invoke("info", index, "--check")
    assert healthy.exit_code == 0 and "check: OK" in healthy.output
    # A copy with one flipped byte in a vector shard.
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(index, broken)
    shard = sorted((broken / "vectors").iterdir())[0]
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    result = invoke("info", broken, "--check")
    assert result.exit_code == 1
    assert shard.name in result.output and "problem:" in result.output
    as_json = invoke("info", broken, "--check", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.output)["ok"] is False


def test_a_damaged_index_is_one_error_line_and_not_reported_updated(tmp_path, built, tiny_compressor_dir):
    import shutil
    import sqlite3

    corpus, index, _ = built

    def damaged(name, harm):
        copy = tmp_path / name
        shutil.copytree(index, copy)
        harm(copy)
        return copy

    def truncate(path, size):
        with open(path, "r+b") as handle:
            handle.truncate(size)

    shard = lambda copy: sorted((copy / "vectors").iterdir())[0]  # noqa: E731
    cases = [
        (damaged("no-shard", lambda c: shard(c).unlink()), "is missing; restore the file or rebuild"),
        (damaged("cut-shard", lambda c: truncate(shard(c), 100)), "bytes, not the"),
        (damaged("cut-meta", lambda c: truncate(c / "meta.sqlite", 4096)), "not readable store metadata"),
    ]

    def files(copy):  # (SQLite may fold its write-ahead log into meta.sqlite on closing: not a change)
        return {p.name: p.read_bytes() for p in copy.rglob("*") if p.is_file() and "sqlite" not in p.name}

    for copy, message in cases:
        before = files(copy)
        result = invoke(
            "index", corpus, "--index", copy, "--model", tiny_compressor_dir, *SETTINGS, "--no-progress"
        )
        assert result.exit_code == 2 and message in result.output, (copy.name, result.output)
        assert result.output.count("\n") == 1 and result.output.startswith("error: ")
        assert files(copy) == before  # no shard, index or manifest written
    no_manifest = damaged("no-manifest", lambda c: (c / "manifest.json").unlink())
    result = invoke("info", no_manifest)
    assert result.exit_code == 2 and "damaged ragcompress index (no manifest.json)" in result.output
    assert "None" not in result.output
    with pytest.raises(sqlite3.DatabaseError):  # the damage above is real
        sqlite3.connect(tmp_path / "cut-meta" / "meta.sqlite").execute("PRAGMA integrity_check").fetchall()


def test_bad_input_is_one_error_line_and_exit_2(tmp_path, built, tiny_compressor_dir):
    corpus, index, _ = built
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.txt").write_text("   \n")
    cases = [
        (("index", tmp_path / "missing"), "does not exist"),
        (("index", empty, "--index", tmp_path / "new"), "no readable documents"),
        (
            ("index", corpus, "--index", index, "--model", tiny_compressor_dir, "--vector-dtype", "int8"),
            "--rebuild",
        ),
        (("index", corpus, "--vector-dtype", "int3"), "vector dtype"),
        (("index", corpus, "--engine", "spark"), "unknown engine"),
        (("info", tmp_path / "missing"), "does not exist"),
        (("info", corpus), "not a ragcompress store"),
        (
            ("index", corpus, "--index", tmp_path / "new", "--model", tmp_path / "no-model"),
            "no such directory",
        ),
        (("index", corpus, "--index", tmp_path / "new", "--commit-every", 0), "commit_every=0 must be"),
        (("index", corpus, "--index", tmp_path / "new", "--workers", 0), "workers=0 must be"),
        (
            (
                "index",
                corpus,
                "--index",
                tmp_path / "new",
                "--model",
                tiny_compressor_dir,
                "--device",
                "bogus",
            ),
            "device 'bogus' is not a device name",
        ),
        (
            ("index", corpus, "--index", corpus / "rivers.txt" / "idx", "--model", tiny_compressor_dir),
            "cannot write the index",
        ),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("  ")]
        assert lines[-1].startswith("error: ") and message in result.output, (args, result.output)
    assert not (tmp_path / "new").exists()


@pytest.mark.e2e
def test_defaults_end_to_end(tmp_path):
    """No options at all: the embedded default compressor and embedder, the default index location."""
    from indexing.chunker import chunk_documents
    from indexing.readers import read_corpus
    from ragcompress.loading import load_compressor, load_embedder
    from ragcompress.modeling import compress
    from ragcompress.paths import default_index_dir

    corpus = write_corpus(tmp_path / "corpus", ["astronomy", "baking"])
    result = invoke("index", corpus)
    assert result.exit_code == 0, result.output
    index = default_index_dir(corpus)
    assert f"index written to {index}\n" in result.output
    store = Store.open(index)
    model, tokenizer, info = load_compressor(None, device="cpu")
    assert store.manifest.compressor.id == info.id and store.manifest.compressor.summary_length == 50
    assert store.manifest.chunking.chunk_tokens == 512 and store.manifest.vector_dtype == "fp16"
    chunks = chunk_documents(read_corpus(corpus).documents, tokenizer, 512, 64)
    ids = [int(i) for i in store.chunk_ids()]
    assert [c.text for c in store.get_chunks(ids)] == [c.text for c in chunks]
    for got, want in zip(
        store.get_vectors(ids), compress(model, [c.token_ids for c in chunks], batch_size=1)
    ):
        assert got.shape == (50, 576)
        torch.testing.assert_close(got, want.float(), atol=0.02, rtol=0.01)  # fp16 storage
    embedder, _ = load_embedder(None, device="cpu")
    (hit,) = store.search(embedder.encode(["Which planet has the Great Red Spot?"])[0], k=1)
    assert store.get_chunks([hit.chunk_id])[0].doc_id == "astronomy"
    stats = json.loads(invoke("info", index, "--json", "--check").output)
    assert stats["ok"] and stats["bytes_per_token"] == pytest.approx(
        stats["vectors"] * 576 * 2 / stats["tokens"]
    )


def test_vector_dtype_help_names_the_store_dtypes():
    # The CLI writes the list out (importing the store at start-up would load torch): it must not drift.
    command = typer.main.get_command(app).commands["index"]
    option = next(p for p in command.params if "--vector-dtype" in p.opts)
    assert option.help == " | ".join(VECTOR_DTYPES)
