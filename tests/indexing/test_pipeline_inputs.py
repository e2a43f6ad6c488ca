"""Hostile corpora through the whole pipeline and the CLI (tiny compressor, real store, real SQLite): a name
that is not UTF-8, symbolic links out of the corpus, files and folders that cannot be read on a re-run."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexing import unescape_name
from ragcompress.store import Store
from tests.indexing import pipeline_helpers as helpers
from tests.indexing.cli_app import app
from tests.indexing.pipeline_helpers import CHUNK_TOKENS, OVERLAP, topic_text, write_corpus
from tests.indexing.test_pipeline import run

private_data_root, tiny_compressor_dir, tiny_models = (
    helpers.private_data_root,
    helpers.tiny_compressor_dir,
    helpers.tiny_models,
)


def stored(index: Path) -> dict[str, tuple[str, str]]:
    with Store.open(index) as store:
        assert store.check() == []
        return {d.doc_id: (d.path, d.content_hash) for d in store.documents()}


def cli(*args) -> object:
    options = ["--chunk-tokens", CHUNK_TOKENS, "--overlap", OVERLAP, "--no-progress"]
    result = CliRunner().invoke(app, [str(a) for a in (*args, *options)])
    assert "Traceback" not in result.output, result.output
    return result


def test_a_name_that_is_not_utf8_is_indexed_and_the_rest_too(tmp_path, tiny_models):
    corpus = write_corpus(tmp_path / "corpus", ["rivers", "bees"])
    with open(os.path.join(os.fsencode(corpus), b"bad\xff.txt"), "wb") as handle:
        handle.write(topic_text("chess").encode())
    report = run(corpus, tmp_path / "index", tiny_models)
    assert (report.added, report.skipped) == (3, [])
    docs = stored(tmp_path / "index")
    assert sorted(docs) == ["bad\\xff", "bees", "rivers"]
    assert unescape_name(docs["bad\\xff"][0]) == b"bad\xff.txt"
    with Store.open(tmp_path / "index") as store:
        assert store.document("bad\\xff").metadata == {"path_escaped": True}
    again = run(corpus, tmp_path / "index", tiny_models)  # the same name every run: nothing to redo
    assert (again.added, again.changed, again.removed, again.unchanged) == (0, 0, 0, 3)


def test_links_out_of_the_corpus_need_follow_links(tmp_path, tiny_models):
    corpus = write_corpus(tmp_path / "corpus", ["rivers", "bees"])
    secret = tmp_path / "elsewhere" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (corpus / "notes.txt").symlink_to(secret)
    write_corpus(tmp_path / "outside", ["trains"])
    (corpus / "more").symlink_to(tmp_path / "outside", target_is_directory=True)
    (corpus / "inside.txt").symlink_to(corpus / "bees.txt")  # stays in the corpus: read

    report = run(corpus, tmp_path / "index", tiny_models)
    assert sorted(stored(tmp_path / "index")) == ["bees", "inside", "rivers"]
    assert {s.path for s in report.skipped} == {"notes.txt", "more"}
    assert all("pass --follow-links" in s.reason for s in report.skipped)

    followed = run(corpus, tmp_path / "index", tiny_models, follow_links=True)
    assert (followed.added, followed.skipped) == (2, [])
    assert sorted(stored(tmp_path / "index")) == ["bees", "inside", "more/trains", "notes", "rivers"]


def test_cli_follow_links_flag(tmp_path, tiny_compressor_dir):
    corpus = write_corpus(tmp_path / "corpus", ["rivers"])
    write_corpus(tmp_path / "outside", ["bees"])
    (corpus / "bees.txt").symlink_to(tmp_path / "outside" / "bees.txt")
    index = tmp_path / "index"
    plain = cli("index", corpus, "--index", index, "--model", tiny_compressor_dir)
    assert plain.exit_code == 0, plain.output  # a link skipped on purpose is not a failure
    assert "bees.txt: symlink to outside the corpus" in plain.output and sorted(stored(index)) == ["rivers"]
    followed = cli("index", corpus, "--index", index, "--model", tiny_compressor_dir, "--follow-links")
    assert followed.exit_code == 0, followed.output
    assert sorted(stored(index)) == ["bees", "rivers"]


@pytest.fixture
def deny(monkeypatch):
    """``deny(file_names, dir_names)``: reading those files, or listing those folders, fails with EACCES.

    Tests run as root here, and root reads whatever the mode bits say, so ``chmod 000`` cannot make the
    failure real; instead the one read function and the one listing call fail as they would for another
    user. Everything else (the walk, the store, SQLite) is real."""
    from indexing import readers

    def apply(files: set[str], dirs: set[str]) -> None:
        real_read, real_scandir = readers._read_bytes, os.scandir

        def read_bytes(path: Path) -> bytes:
            if path.name in files:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_read(path)

        def scandir(path):
            if Path(path).name in dirs:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_scandir(path)

        monkeypatch.setattr(readers, "_read_bytes", read_bytes)
        monkeypatch.setattr(os, "scandir", scandir)

    return apply


def unreadable_later_corpus(tmp_path: Path) -> Path:
    corpus = write_corpus(tmp_path / "corpus", ["rivers", "bees", "trains"])
    write_corpus(corpus / "sub", ["chess"])
    records = [f'{{"id": "{t}", "text": "{topic_text(t).strip()}"}}' for t in ("baking", "astronomy")]
    (corpus / "qa.jsonl").write_text("\n".join(records).replace("\n\n", " ") + "\n")
    return corpus


def test_unreadable_files_and_folders_keep_their_documents(tmp_path, tiny_models, deny):
    corpus = unreadable_later_corpus(tmp_path)
    index = tmp_path / "index"
    run(corpus, index, tiny_models)
    before = stored(index)
    assert sorted(before) == ["bees", "qa#astronomy", "qa#baking", "rivers", "sub/chess", "trains"]

    (corpus / "trains.txt").unlink()  # really deleted: removed, as before
    deny({"rivers.txt", "qa.jsonl"}, {"sub"})
    report = run(corpus, index, tiny_models)
    after = stored(index)
    assert after == {k: v for k, v in before.items() if k != "trains"}  # same paths, same hashes
    assert (report.removed, report.kept_unreadable, report.unchanged) == (1, 4, 1)
    assert sorted(s.path for s in report.unreadable) == ["qa.jsonl", "rivers.txt", "sub"]


def test_cli_reports_unreadable_files_and_exits_1(tmp_path, tiny_compressor_dir, deny):
    corpus = unreadable_later_corpus(tmp_path)
    index = tmp_path / "index"
    first = cli("index", corpus, "--index", index, "--model", tiny_compressor_dir)
    assert first.exit_code == 0, first.output
    deny({"rivers.txt"}, {"sub"})
    result = cli("index", corpus, "--index", index, "--model", tiny_compressor_dir)
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "documents kept (unreadable) │ 2" in out and "documents removed │ 0" in out
    assert "rivers.txt: unreadable: Permission denied" in out and "sub: unreadable directory" in out
    last = result.output.strip().splitlines()[-1]
    assert (
        last.startswith("error: 2 file(s) or folder(s) could not be read; 2 document(s)")
        and "run the same" in last
    )
    assert len(stored(index)) == 6
