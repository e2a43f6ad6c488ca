"""The walk: symbolic links (kept inside the corpus unless asked), names that are not UTF-8, files and
folders that cannot be read (reported as such, so that the pipeline keeps what is indexed from them)."""

import errno
import os
from pathlib import Path

import pytest

from indexing import read_corpus, unescape_name
from indexing.walk import printable
from tests.indexing.test_readers import docs_by_id, reasons, write


def test_symlink_loops_terminate_and_are_reported(tmp_path):
    write(tmp_path, "sub/doc.txt", "content")
    (tmp_path / "sub" / "up").symlink_to("..", target_is_directory=True)  # loops to the root
    (tmp_path / "sub" / "self").symlink_to(".", target_is_directory=True)
    (tmp_path / "ping.txt").symlink_to("pong.txt")
    (tmp_path / "pong.txt").symlink_to("ping.txt")
    result = read_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["sub/doc"]
    got = reasons(result)
    assert got["ping.txt"] == got["pong.txt"] == "symlink loop"
    assert got["sub/up"].startswith("symlink loop") and got["sub/self"].startswith("symlink loop")


def test_broken_symlink_is_reported(tmp_path):
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    assert reasons(read_corpus(tmp_path)) == {"gone.txt": "broken symlink: its target does not exist"}


def test_symlinks_inside_the_corpus_are_followed(tmp_path):
    write(tmp_path, "real/doc.txt", "real text")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real" / "doc.txt")
    (tmp_path / "again").symlink_to("real", target_is_directory=True)  # same tree twice
    result = read_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["alias", "real/doc"]
    assert reasons(result) == {"again": "already read: same directory as 'real'"}


def outside_links(tmp_path: Path) -> Path:
    """A corpus with links to a file and to a folder outside it, and a link that resolves inside it."""
    corpus, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    write(elsewhere, "passwd.txt", "root:x:0:0:root:/root:/bin/bash")
    write(elsewhere, "far/far.txt", "from outside")
    write(corpus, "real/doc.txt", "real text")
    (corpus / "notes.txt").symlink_to(elsewhere / "passwd.txt")
    (corpus / "ext").symlink_to(elsewhere / "far", target_is_directory=True)
    # Through a link that leaves and one that comes back: resolved, it is inside.
    (elsewhere / "back").symlink_to(corpus / "real", target_is_directory=True)
    (corpus / "roundabout.txt").symlink_to(elsewhere / "back" / "doc.txt")
    (corpus / "up").symlink_to("..", target_is_directory=True)  # the corpus's parent: outside, and a loop
    return corpus


def test_symlinks_out_of_the_corpus_are_skipped_by_default(tmp_path):
    result = read_corpus(outside_links(tmp_path))
    assert [d.doc_id for d in result.documents] == ["real/doc", "roundabout"]
    outside = tmp_path.resolve() / "elsewhere"
    hint = "not read; pass --follow-links to read it"
    assert reasons(result) == {
        "ext": f"symlink to outside the corpus ({outside / 'far'}): {hint}",
        "notes.txt": f"symlink to outside the corpus ({outside / 'passwd.txt'}): {hint}",
        "up": f"symlink to outside the corpus ({tmp_path.resolve()}): {hint}",
    }
    assert "symlink to outside the corpus (3)" in result.summary()
    assert not any(s.unreadable for s in result.skipped)  # a decision, not a failure


def test_follow_links_reads_outside_targets_and_still_ends_loops(tmp_path):
    result = read_corpus(outside_links(tmp_path), follow_links=True)
    ids = [d.doc_id for d in result.documents]
    assert ids[:4] == ["ext/far", "notes", "real/doc", "roundabout"]
    assert docs_by_id(result)["notes"].text.startswith("root:x:0:0")
    # "up" walks the parent, which holds the corpus again: read once, the loop reported.
    assert "up/elsewhere/passwd" in ids
    assert reasons(result)["up/corpus"].startswith("symlink loop")


# --- names that are not UTF-8 -----------------------------------------------------------------------


def write_raw(root: Path, rel: bytes, data: bytes) -> None:
    path = os.path.join(os.fsencode(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def test_names_that_are_not_utf8_are_read_under_a_reversible_escaped_name(tmp_path):
    write_raw(tmp_path, b"bad\xff.txt", b"a Latin-1 name")
    write_raw(tmp_path, b"d\xe9j\xe0/back\\slash.md", b"a Latin-1 folder and a backslash")
    write_raw(tmp_path, b"plain\\name.txt", b"a backslash alone is valid UTF-8: left as it is")
    write_raw(tmp_path, b"pic\xfe.png", b"\x89PNG")
    result = read_corpus(tmp_path)
    docs = docs_by_id(result)
    assert sorted(docs) == ["bad\\xff", "d\\xe9j\\xe0/back\\\\slash", "plain\\name"]
    assert docs["bad\\xff"].path == "bad\\xff.txt" and docs["bad\\xff"].metadata == {"path_escaped": True}
    assert docs["plain\\name"].metadata == {}
    for doc in docs.values():
        doc.doc_id.encode("utf-8"), doc.path.encode("utf-8")  # what SQLite needs: no lone surrogates
        # The escaped spelling gives the exact bytes back, so the file can be found and opened.
        name = unescape_name(doc.path) if doc.metadata.get("path_escaped") else doc.path.encode()
        with open(os.path.join(os.fsencode(tmp_path), name), "rb") as handle:
            assert handle.read().decode() == doc.text
    assert reasons(result) == {"pic\\xfe.png": "unsupported file type: '.png'"}
    str(result.skipped[0]).encode("utf-8")  # printable


# --- files and folders that cannot be read ----------------------------------------------------------


def test_unreadable_files_and_folders_are_flagged_gone_ones_are_not(tmp_path, deny_reads, monkeypatch):
    write(tmp_path, "locked.txt", "secret")
    write(tmp_path, "closed/inside.txt", "hidden away")
    write(tmp_path, "open.txt", "public")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    # Tests run as root here, where chmod 000 stops no read: the one read function and the one listing
    # fail the way they would for another user (EACCES), everything else is real.
    deny_reads("locked.txt")
    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "closed":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = read_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["open"]
    assert {s.path: s.unreadable for s in result.skipped} == {
        "closed": True,
        "gone.txt": False,
        "locked.txt": True,
    }


def test_a_directory_or_fifo_in_place_of_a_file_is_not_unreadable(tmp_path):
    # Real conditions, no patching: what replaced a file is reported; it is not an I/O failure.
    (tmp_path / "notes.txt").mkdir()
    os.mkfifo(tmp_path / "queue.txt")
    result = read_corpus(tmp_path)
    assert result.documents == [] and not any(s.unreadable for s in result.skipped)
    assert reasons(result) == {"queue.txt": "not a regular file: a device, pipe or socket"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_chmod_000_file_is_unreadable_for_real(tmp_path):
    locked = write(tmp_path, "locked.txt", "secret")
    locked.chmod(0)
    try:
        (skip,) = read_corpus(tmp_path).skipped
    finally:
        locked.chmod(0o644)
    assert (skip.path, skip.reason, skip.unreadable) == ("locked.txt", "unreadable: Permission denied", True)


def test_control_characters_in_names_are_escaped_where_printed_but_kept_in_doc_ids(tmp_path):
    write(tmp_path, "two\nlines.txt", "text")  # a legal name that would break a line of output
    (tmp_path / "gone\x1b[2J.txt").symlink_to(tmp_path / "missing.txt")  # an escape sequence: clears a screen
    result = read_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["two\nlines"]  # the name as on disk, for lookups
    assert reasons(result) == {"gone\\x1b[2J.txt": "broken symlink: its target does not exist"}
    assert printable("café\tß") == "café\\tß"  # letters of any script stay as they are
