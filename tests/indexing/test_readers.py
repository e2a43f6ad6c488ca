import errno
import hashlib
import os
import random
import sys
from pathlib import Path

import pytest

from indexing import CorpusError, read_corpus, readers
from indexing.encoding import BINARY, UNDETECTED_ENCODING
from indexing.readers import EMPTY, PDF_MISSING


def write(root: Path, rel: str, data: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def reasons(result) -> dict[str, str]:
    return {s.path if s.line is None else f"{s.path}:{s.line}": s.reason for s in result.skipped}


def docs_by_id(result):
    return {d.doc_id: d for d in result.documents}


# --- the root ----------------------------------------------------------------------------------------


def test_missing_root_is_one_clear_error(tmp_path):
    missing = tmp_path / "no-such-corpus"
    with pytest.raises(CorpusError) as info:
        read_corpus(missing)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(missing) in message and "does not exist" in message and "\n" not in message


def test_root_that_is_not_a_file_or_directory_is_an_error(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(CorpusError, match="not a directory or a regular file"):
        read_corpus(fifo)


def test_root_can_be_a_single_file(tmp_path):
    path = write(tmp_path, "only.md", "# Title\n\nBody.")
    result = read_corpus(path)
    assert [(d.doc_id, d.path) for d in result.documents] == [("only", "only.md")]


def test_empty_directory_is_not_an_error_but_obvious(tmp_path):
    result = read_corpus(tmp_path)
    assert result.documents == [] and result.skipped == []
    assert result.summary().startswith("no readable documents in")


def test_directory_of_only_bad_files_says_why(tmp_path):
    write(tmp_path, "a.txt", "")
    write(tmp_path, "b.bin", b"\x00\x01\x02")
    summary = read_corpus(tmp_path).summary()
    assert summary.startswith("no readable documents") and "binary file (1)" in summary and "empty" in summary


# --- file contents -----------------------------------------------------------------------------------


def test_binary_files_are_skipped(tmp_path):
    write(tmp_path, "blob.bin", bytes(range(256)) * 4)
    write(tmp_path, "fake.txt", b"looks like text\x00but is not")
    write(tmp_path, "photo.png", b"\x89PNG no nul byte here")
    write(tmp_path, "ok.txt", "fine")
    result = read_corpus(tmp_path)
    assert reasons(result) == {
        "blob.bin": BINARY,
        "fake.txt": BINARY,
        "photo.png": "unsupported file type: '.png'",
    }
    assert [d.doc_id for d in result.documents] == ["ok"]


def test_latin1_is_read_as_windows_1252_never_mangled(tmp_path):
    text = "Le café crème était très bon; l'élève a mangé une brûlée à la façon du chef.\n" * 3
    write(tmp_path, "latin.txt", text.encode("latin-1"))
    (doc,) = read_corpus(tmp_path).documents
    assert doc.metadata["encoding"] == "cp1252"  # Windows-1252 wins code-page ties
    assert doc.text == text.strip()


@pytest.mark.parametrize(
    "text, encoding",
    [
        ("café", "latin-1"),  # was read as UTF-16-BE: '捡曩'
        ("Größe", "latin-1"),  # was read as EBCDIC cp037: 'åÊ6ÿÁ'
        ("Straße", "latin-1"),
        ("über", "latin-1"),
        ("déjà vu", "latin-1"),
        ("Ça va? Très bien.", "latin-1"),  # was read as Big5
        ("El niño comió piñata y jamón en la fiesta de cumpleaños, ¿verdad?", "latin-1"),
        ("“Smart quotes” – and dashes… cost 5 €", "cp1252"),
    ],
)
def test_short_western_text_is_windows_1252_not_an_exotic_codec(tmp_path, text, encoding):
    write(tmp_path, "short.txt", text.encode(encoding))
    (doc,) = read_corpus(tmp_path).documents
    assert (doc.text, doc.metadata) == (text, {"encoding": "cp1252"})


def test_utf8_with_stray_latin1_bytes_keeps_both(tmp_path):
    data = "Grüße – “quoted” in UTF-8, ".encode() + "then café in Latin-1".encode("latin-1")
    write(tmp_path, "mixed.md", data)
    (doc,) = read_corpus(tmp_path).documents
    assert doc.text == "Grüße – “quoted” in UTF-8, then café in Latin-1"
    assert doc.metadata == {"encoding": "utf-8+cp1252"}


@pytest.mark.parametrize(
    "text, encoding",
    [
        ("Привет, как дела? Сегодня хорошая погода, и мы пойдём гулять в парк. ", "cp1251"),
        ("日本語のテキストです。これは短い文です。東京は日本の首都で、人口が多い都市です。", "shift_jis"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy. Čeština je krásný jazyk, ale těžký. ", "cp1250"),
    ],
)
def test_other_code_pages_need_enough_bytes_for_detection(tmp_path, text, encoding):
    pytest.importorskip("charset_normalizer")
    write(tmp_path, "long.txt", text.encode(encoding))
    (doc,) = read_corpus(tmp_path).documents
    assert doc.text == text.strip() and doc.metadata["encoding"] not in ("cp1252", "utf-8+cp1252")


def test_undecodable_bytes_are_skipped(tmp_path):
    rng = random.Random(0)
    write(tmp_path, "noise.txt", bytes(rng.randrange(1, 256) for _ in range(4000)))
    write(tmp_path, "short.txt", b"\xe9t\x01\x02")  # control characters: not text in any code page
    expected = {"noise.txt": UNDETECTED_ENCODING, "short.txt": UNDETECTED_ENCODING}
    assert reasons(read_corpus(tmp_path)) == expected


def test_without_charset_normalizer_western_text_still_reads(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "charset_normalizer", None)  # makes the import fail
    write(tmp_path, "latin.txt", ("café crème " * 20).encode("latin-1"))
    rng = random.Random(1)
    write(tmp_path, "noise.txt", bytes(rng.randrange(1, 256) for _ in range(500)))
    result = read_corpus(tmp_path)
    assert [(d.doc_id, d.metadata) for d in result.documents] == [("latin", {"encoding": "cp1252"})]
    assert reasons(result) == {"noise.txt": UNDETECTED_ENCODING}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_byte_order_marks_are_honoured(tmp_path, encoding):
    text = "Grüße aus Köln — ünïcödé ✓"
    data = text.encode(encoding)
    if encoding == "utf-16-be":  # this codec writes no BOM: add the big-endian one
        data = b"\xfe\xff" + data
    write(tmp_path, "doc.txt", data)
    (doc,) = read_corpus(tmp_path).documents
    assert doc.text == text  # BOM gone, characters intact


def test_empty_and_whitespace_only_files_are_skipped(tmp_path):
    write(tmp_path, "empty.txt", b"")
    write(tmp_path, "blank.md", " \n\t\r\n  ")
    write(tmp_path, "blank16.txt", "  \n ".encode("utf-16"))
    assert reasons(read_corpus(tmp_path)) == {"empty.txt": EMPTY, "blank.md": EMPTY, "blank16.txt": EMPTY}


def test_unreadable_file_is_skipped_with_the_os_error(tmp_path, deny_reads):
    locked = write(tmp_path, "locked.txt", "secret")
    write(tmp_path, "open.txt", "public")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # running as root: chmod does not stop reads
            deny_reads("locked.txt")
        result = read_corpus(tmp_path)
    finally:
        locked.chmod(0o644)
    assert reasons(result) == {"locked.txt": "unreadable: Permission denied"}
    assert [d.doc_id for d in result.documents] == ["open"]


def test_unlistable_subdirectory_is_skipped(tmp_path, monkeypatch):
    write(tmp_path, "closed/inside.txt", "hidden away")
    write(tmp_path, "top.txt", "visible")
    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "closed":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = read_corpus(tmp_path)
    assert reasons(result) == {"closed": "unreadable directory: Permission denied"}
    assert [d.doc_id for d in result.documents] == ["top"]


def test_special_files_are_skipped_not_read(tmp_path):
    os.mkfifo(tmp_path / "queue.txt")  # opening it for reading would block forever
    assert reasons(read_corpus(tmp_path)) == {"queue.txt": "not a regular file: a device, pipe or socket"}


def test_text_is_normalised_and_hashed(tmp_path):
    write(tmp_path, "crlf.txt", b"  Line one\r\nCafe\xcc\x81\r\n\r\n")  # decomposed é, CRLF, padding
    write(tmp_path, "lf.md", "Line one\nCafé")
    docs = docs_by_id(read_corpus(tmp_path))
    assert docs["crlf"].text == docs["lf"].text == "Line one\nCafé"
    expected = hashlib.sha256("Line one\nCafé".encode()).hexdigest()
    assert docs["crlf"].content_hash == docs["lf"].content_hash == expected


# --- the walk ----------------------------------------------------------------------------------------


def test_nested_directories_sorted_ids_with_posix_paths(tmp_path):
    for rel in ["b.txt", "a/z.md", "a/b/c/deep.rst", "a/b/x.txt", "a.txt", "notes.v2.txt"]:
        write(tmp_path, rel, f"text of {rel}")
    result = read_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["a/b/c/deep", "a/b/x", "a/z", "a", "b", "notes.v2"]
    assert result.documents[0].path == "a/b/c/deep.rst"
    assert [d.doc_id for d in read_corpus(tmp_path).documents] == [d.doc_id for d in result.documents]


def test_hidden_files_and_directories_are_ignored(tmp_path):
    write(tmp_path, ".hidden.txt", "no")
    write(tmp_path, ".git/config.txt", "no")
    write(tmp_path, "sub/.cache/x.md", "no")
    write(tmp_path, "sub/seen.md", "yes")
    result = read_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["sub/seen"] and result.skipped == []


def test_include_patterns(tmp_path):
    for rel in ["a.md", "b.txt", "sub/c.md", "sub/d.html"]:
        write(tmp_path, rel, "text")
    assert [d.doc_id for d in read_corpus(tmp_path, include="*.md").documents] == ["a", "sub/c"]
    picked = read_corpus(tmp_path, include=["sub/*", "b.*"]).documents
    assert [d.doc_id for d in picked] == ["b", "sub/c", "sub/d"]


def test_two_files_with_one_id_keep_the_first(tmp_path):
    write(tmp_path, "notes.md", "markdown")
    write(tmp_path, "notes.txt", "text")
    result = read_corpus(tmp_path)
    assert [(d.doc_id, d.text) for d in result.documents] == [("notes", "markdown")]
    assert reasons(result)["notes.txt"].startswith("duplicate document id: 'notes' is taken by notes.md")


# --- formats -----------------------------------------------------------------------------------------


def test_html_text_extraction(tmp_path):
    page = """<!doctype html><html><head><title> The   Page </title>
    <style>p { color: red }</style><script>var x = "<p>not text</p>";</script></head>
    <body><h1>Heading</h1><p>First   paragraph
    with a line wrap &amp; an entity.</p><!-- a comment -->
    <div>Second<br>line two</div><noscript>enable js</noscript>
    <ul><li>one</li><li>two</li></ul><pre>  keep
    this  spacing</pre><table><tr><td>a</td><td>b</td></tr></table></body></html>"""
    write(tmp_path, "page.html", page)
    (doc,) = read_corpus(tmp_path).documents
    assert doc.doc_id == "page" and doc.metadata == {"title": "The Page"}
    assert doc.text == (
        "The Page\n\nHeading\n\nFirst paragraph with a line wrap & an entity.\n\n"
        "Second\nline two\n\none\ntwo\n\n  keep\n    this  spacing\n\na b"
    )


def test_html_without_text_is_empty(tmp_path):
    write(tmp_path, "blank.htm", "<html><body><script>x()</script><p>  </p></body></html>")
    assert reasons(read_corpus(tmp_path)) == {"blank.htm": EMPTY}


def test_jsonl_records_become_documents(tmp_path):
    lines = [
        '{"id": "q1", "text": "First record.", "source": "wiki", "year": 2020}',
        "{not json",
        "",
        "[1, 2]",
        '{"text": "No id, so the line number."}',
        '{"id": 7, "body": "wrong field"}',
        '{"id": "q1", "text": "Same id again."}',
        '{"id": null, "text": "   "}',
        '{"id": [1], "text": "bad id"}',
    ]
    write(tmp_path, "data/qa.jsonl", "\n".join(lines) + "\n")
    result = read_corpus(tmp_path)
    docs = docs_by_id(result)
    assert list(docs) == ["data/qa#q1", "data/qa#5"]
    assert docs["data/qa#q1"].metadata == {"source": "wiki", "year": 2020}
    assert docs["data/qa#q1"].path == "data/qa.jsonl"
    got = reasons(result)
    assert got["data/qa.jsonl:2"].startswith("line 2: invalid JSON")
    assert got["data/qa.jsonl:4"] == "line 4: not a JSON object"
    assert got["data/qa.jsonl:6"] == "line 6: missing text field: 'text'"
    assert got["data/qa.jsonl:7"].startswith("duplicate document id: 'data/qa#q1'")
    assert got["data/qa.jsonl:8"] == "line 8: empty"
    assert got["data/qa.jsonl:9"].startswith("line 9: bad id field")
    assert len(got) == 6
    assert "invalid JSON" in result.summary()


def test_jsonl_custom_fields(tmp_path):
    write(tmp_path, "c.jsonl", '{"doc": "abc", "content": "Body text.", "lang": "en"}\n')
    (doc,) = read_corpus(tmp_path, jsonl_text_field="content", jsonl_id_field="doc").documents
    assert (doc.doc_id, doc.text, doc.metadata) == ("c#abc", "Body text.", {"lang": "en"})


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica, with a correct cross-reference table."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_pdf_text_when_pypdf_is_installed(tmp_path):
    pytest.importorskip("pypdf")
    write(tmp_path, "paper.pdf", minimal_pdf("Summary vectors compress text."))
    write(tmp_path, "broken.pdf", b"%PDF-1.4\nthis is not really a pdf")
    result = read_corpus(tmp_path)
    (doc,) = result.documents
    assert doc.doc_id == "paper" and "Summary vectors compress text." in doc.text
    assert doc.metadata == {"pages": 1}
    assert reasons(result)["broken.pdf"].startswith("unreadable PDF")


def test_pdf_without_pypdf_is_skipped_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "pdf_supported", lambda: False)
    write(tmp_path, "paper.pdf", minimal_pdf("hello"))
    assert reasons(read_corpus(tmp_path)) == {"paper.pdf": PDF_MISSING}


def test_jsonl_lone_surrogate_escape_does_not_break_hashing(tmp_path):
    write(tmp_path, "s.jsonl", '{"text": "half a pair: \\ud83d here"}\n')
    (doc,) = read_corpus(tmp_path).documents
    assert doc.text == "half a pair: \ufffd here" and len(doc.content_hash) == 64
