"""Property tests: any bytes, any file name in; a document or a skip reason out, never an exception.

Bounded (few examples, small inputs) so the module runs in seconds; ``deadline=None`` because the first
call of charset-normalizer or the tokenizer is slow for reasons unrelated to the input.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from indexing import chunk_documents, read_corpus, unescape_name
from indexing.encoding import MIXED, WESTERN, decode_bytes
from indexing.walk import escape_name

BOUNDED = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = [".txt", ".md", ".html", ".jsonl", ".rst", ".pdf", ".png", ""]

# Bytes that look like text in some way, mixed with anything: pure random bytes would almost always be
# decided by the first NUL or control character.
texty = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(st.characters(max_codepoint=0xFF), max_size=120).map(lambda t: t.encode("latin-1")),
    st.lists(
        st.sampled_from([b"caf\xe9 ", "Größe ".encode(), b"\xff\xfe", b"\xef\xbb\xbf", b"{}", b"\n"]),
        max_size=30,
    ).map(b"".join),
)
# A file name: any bytes but "/" and NUL (the two a POSIX name cannot hold), not hidden, not too long.
names = st.binary(min_size=1, max_size=40).filter(
    lambda b: b"/" not in b and b"\x00" not in b and b[:1] != b"."
)


def is_storable(text: str) -> bool:
    text.encode("utf-8")  # raises on a lone surrogate, as SQLite's insert did
    return True


@BOUNDED
@given(data=texty)
@example(data="café".encode("latin-1"))
@example(data="Größe".encode("latin-1"))
@example(data=b"\xef\xbb\xbf\xe9t\xe9")
def test_decode_bytes_gives_text_or_a_reason(data):
    text, encoding, reason = decode_bytes(data)
    if text is None:
        assert encoding == "" and reason
        return
    assert reason == "" and is_storable(text)
    if encoding == "utf-8":
        assert text.encode("utf-8") == data
    elif encoding == WESTERN:  # one byte, one character: nothing lost or invented
        assert len(text) == len(data) - (3 if data.startswith(b"\xef\xbb\xbf") else 0)
    elif encoding == MIXED:
        assert len(text) < len(data)  # some bytes were UTF-8 sequences


@BOUNDED
@given(name=names)
def test_escaped_names_are_storable_and_reversible(name):
    spelling, escaped = escape_name(os.fsdecode(name))
    assert is_storable(spelling)
    assert (unescape_name(spelling) if escaped else spelling.encode()) == name


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(name=names, suffix=st.sampled_from(SUFFIXES), data=texty)
def test_any_file_gives_a_document_or_a_reason(tokenizer, name, suffix, data):
    with tempfile.TemporaryDirectory() as root:
        raw = name + suffix.encode()
        if len(raw) > 255:
            raw = raw[-255:] if suffix else raw[:255]
        with open(os.path.join(os.fsencode(root), raw), "wb") as handle:
            handle.write(data)
        result = read_corpus(Path(root))
        summary = result.summary()
    assert len(result.documents) + len(result.skipped) >= 1 or raw.startswith(b".")
    assert is_storable(summary)
    for skipped in result.skipped:
        assert is_storable(str(skipped)) and not skipped.reason.startswith("internal error")
    for doc in result.documents:
        assert all(is_storable(s) for s in (doc.doc_id, doc.path, doc.text, json.dumps(doc.metadata)))
        assert doc.text and doc.text == doc.text.strip()
    for chunk in chunk_documents(result.documents, tokenizer, chunk_tokens=32, overlap=4):
        assert chunk.text and 0 < chunk.n_tokens <= 32


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
records = st.one_of(
    st.fixed_dictionaries({"text": json_values}, optional={"id": json_values, "extra": json_values}).map(
        json.dumps
    ),
    st.text(max_size=40),  # not JSON at all, or JSON that is not an object
    st.sampled_from(
        ['{"id": "\\udc80", "text": "lone surrogate id"}', "[" * 5000, '{"text": 1' + "0" * 5000 + "}"]
    ),
)


@BOUNDED
@given(lines=st.lists(records, min_size=1, max_size=6))
def test_any_jsonl_gives_records_or_reasons(lines):
    with tempfile.TemporaryDirectory() as root:
        Path(root, "data.jsonl").write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        result = read_corpus(Path(root))
    for skipped in result.skipped:
        assert is_storable(str(skipped)) and not skipped.reason.startswith("internal error")
    for doc in result.documents:
        assert is_storable(doc.doc_id) and is_storable(doc.text) and doc.doc_id.startswith("data#")
