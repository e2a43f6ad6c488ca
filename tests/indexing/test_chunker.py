import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexing import Chunk, Document, chunk_document, chunk_documents
from indexing.readers import content_hash

WORDS = (
    "the compressor reads each chunk once and writes fifty summary vectors which a retriever later "
    "fuses into the prompt of a small language model that answers questions about the corpus"
).split()
# Words a byte-level BPE splits in awkward places: accents, CJK, emoji, digits, long runs.
ODD_WORDS = ["naïve", "Ünïcödé", "東京都", "🙂👍", "3.14159", "e.g.", "x" * 40, "don't", "(aside)", "—"]


def doc(text: str, doc_id: str = "d") -> Document:
    return Document(doc_id, f"{doc_id}.txt", text, content_hash(text))


def own_tokens(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def prose(seed: int, paragraphs: int, sentences: int = 6, words: int = 14) -> str:
    rng = random.Random(seed)
    return "\n\n".join(
        " ".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, words))).capitalize() + rng.choice(".!?")
            for _ in range(rng.randint(1, sentences))
        )
        for _ in range(paragraphs)
    )


def check_invariants(document: Document, chunks: list[Chunk], tokenizer, chunk_tokens: int) -> None:
    text = document.text
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    covered = [False] * len(text)
    for c in chunks:
        assert c.doc_id == document.doc_id
        assert text[c.char_start : c.char_end] == c.text  # offsets are exact
        assert c.text.strip()  # no whitespace-only chunks
        ids = own_tokens(tokenizer, c.text)
        assert c.token_ids == ids and c.n_tokens == len(ids) <= chunk_tokens
        covered[c.char_start : c.char_end] = [True] * (c.char_end - c.char_start)
    assert all(covered), "every character is in some chunk"
    for a, b in zip(chunks, chunks[1:]):
        assert a.char_start < b.char_start <= a.char_end < b.char_end  # forward, overlapping or adjacent


# Paragraphs of sentences of words, glued by the separators real documents use.
word = st.one_of(st.sampled_from(WORDS), st.sampled_from(ODD_WORDS))
sentence = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(word, min_size=1, max_size=25),
    st.sampled_from([".", "!", "?", "", ":", '."', "…"]),
)
paragraph = st.builds(
    lambda parts, glue: glue.join(parts),
    st.lists(sentence, min_size=1, max_size=6),
    st.sampled_from([" ", "  ", "\n", " \t"]),
)
document_text = st.builds(
    lambda parts, glue: glue.join(parts),
    st.lists(paragraph, min_size=1, max_size=8),
    st.sampled_from(["\n\n", "\n \n", "\n\n\n", "\r\n\r\n"]),
).filter(lambda t: t.strip())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=document_text, chunk_tokens=st.integers(16, 96), data=st.data())
def test_chunk_properties(tokenizer, text, chunk_tokens, data):
    overlap = data.draw(st.integers(0, chunk_tokens - 1), label="overlap")
    document = doc(text)
    chunks = chunk_document(document, tokenizer, chunk_tokens=chunk_tokens, overlap=overlap)
    check_invariants(document, chunks, tokenizer, chunk_tokens)
    for a, b in zip(chunks, chunks[1:]):
        repeated = own_tokens(tokenizer, text[b.char_start : a.char_end]) if b.char_start < a.char_end else []
        assert len(repeated) <= overlap + 2  # never (much) more overlap than asked
    # deterministic, and batching documents together changes nothing
    assert chunk_document(document, tokenizer, chunk_tokens=chunk_tokens, overlap=overlap) == chunks
    other = doc(text[::-1], "other")
    batched = chunk_documents([other, document], tokenizer, chunk_tokens=chunk_tokens, overlap=overlap)
    assert [c for c in batched if c.doc_id == "d"] == chunks


# Any characters at all (control, combining, astral, odd spaces), except lone surrogates, which the
# readers never produce.
any_char = st.one_of(
    st.characters(blacklist_categories=("Cs",)),
    st.sampled_from(
        [" ", "\n", "\t", ".", "!", "\u0301", "🙂", "東", "\u200b", "\r", "\x0b", "\u2028", "\xa0"]
    ),
)
any_text = st.lists(st.text(any_char, min_size=1, max_size=12), min_size=1, max_size=200).map(" ".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=any_text, chunk_tokens=st.integers(16, 40), data=st.data())
def test_any_text_keeps_every_visible_character(tokenizer, text, chunk_tokens, data):
    overlap = data.draw(st.integers(0, chunk_tokens - 1), label="overlap")
    chunks = chunk_document(doc(text), tokenizer, chunk_tokens=chunk_tokens, overlap=overlap)
    covered = set()
    for i, c in enumerate(chunks):
        assert c.ordinal == i and text[c.char_start : c.char_end] == c.text and c.text.strip()
        assert c.token_ids == own_tokens(tokenizer, c.text) and c.n_tokens <= chunk_tokens
        covered.update(range(c.char_start, c.char_end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_overlap_is_about_what_was_asked(tokenizer):
    document = doc(prose(1, paragraphs=40))
    chunks = chunk_document(document, tokenizer, chunk_tokens=256, overlap=64)
    check_invariants(document, chunks, tokenizer, 256)
    repeated = [
        len(own_tokens(tokenizer, document.text[b.char_start : a.char_end]))
        for a, b in zip(chunks, chunks[1:])
    ]
    assert len(repeated) >= 5
    assert all(24 <= r <= 66 for r in repeated), repeated
    assert sum(repeated) / len(repeated) >= 40
    # the repeated part starts at a word, not in the middle of one
    assert all(document.text[c.char_start - 1].isspace() for c in chunks[1:])


def test_no_overlap_means_adjacent_chunks(tokenizer):
    document = doc(prose(2, paragraphs=30))
    chunks = chunk_document(document, tokenizer, chunk_tokens=128, overlap=0)
    check_invariants(document, chunks, tokenizer, 128)
    assert all(a.char_end == b.char_start for a, b in zip(chunks, chunks[1:]))
    assert "".join(c.text for c in chunks) == document.text


def test_cuts_prefer_paragraphs_then_sentences(tokenizer):
    paragraphs = doc(prose(3, paragraphs=30, sentences=3))
    chunks = chunk_document(paragraphs, tokenizer, chunk_tokens=200, overlap=0)
    assert len(chunks) > 3
    assert all(c.text.endswith("\n\n") for c in chunks[:-1])
    assert sum(c.n_tokens for c in chunks[:-1]) / (len(chunks) - 1) > 100  # breaks, but not wasteful ones

    one_paragraph = doc(prose(4, paragraphs=30).replace("\n\n", " "))
    chunks = chunk_document(one_paragraph, tokenizer, chunk_tokens=100, overlap=0)
    assert len(chunks) > 3
    assert all(c.text.rstrip()[-1] in ".!?" for c in chunks[:-1])


def test_text_without_spaces_is_cut_between_tokens(tokenizer):
    document = doc("".join(random.Random(5).choice("abcdefghij0123456789+/") for _ in range(5000)))
    chunks = chunk_document(document, tokenizer, chunk_tokens=64, overlap=8)
    check_invariants(document, chunks, tokenizer, 64)
    assert max(c.n_tokens for c in chunks) >= 56  # token cuts still fill the chunk


def test_long_whitespace_runs_and_odd_characters(tokenizer):
    text = "start " + " " * 3000 + "middle\n" + "\n" * 500 + "🙂" * 300 + " end. " + "東京" * 200
    document = doc(text)
    chunks = chunk_document(document, tokenizer, chunk_tokens=32, overlap=8)
    for c in chunks:
        assert text[c.char_start : c.char_end] == c.text and c.n_tokens <= 32 and c.text.strip()
    covered = set()
    for c in chunks:
        covered.update(range(c.char_start, c.char_end))
    # whitespace-only stretches longer than a chunk may be dropped; every visible character is kept
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_short_and_empty_documents(tokenizer):
    (only,) = chunk_document(doc("Just one line."), tokenizer)
    assert (only.char_start, only.char_end, only.text) == (0, 14, "Just one line.")
    assert chunk_document(doc(""), tokenizer) == []
    assert chunk_document(doc(" \n\t "), tokenizer) == []
    assert chunk_documents([], tokenizer) == []


@pytest.mark.parametrize(
    ("chunk_tokens", "overlap", "message"),
    [
        (8, 0, "at least 16"),
        (64, 64, "smaller than chunk_tokens"),
        (64, 100, "smaller than chunk_tokens"),
        (64, -1, "0 or more"),
        (64.0, 0, "integer"),
    ],
)
def test_bad_arguments(tokenizer, chunk_tokens, overlap, message):
    with pytest.raises(ValueError, match=message):
        chunk_document(doc("text"), tokenizer, chunk_tokens=chunk_tokens, overlap=overlap)


def test_slow_tokenizer_is_refused():
    class SlowTokenizer:
        is_fast = False

    with pytest.raises(TypeError, match="fast"):
        chunk_document(doc("text"), SlowTokenizer())
