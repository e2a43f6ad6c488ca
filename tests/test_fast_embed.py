"""`fast_embed.GraphEncoder`: questions embedded from padded static buffers (CUDA graphs on a GPU) give
`encode`'s embeddings; `Embedder` routes a few texts through it on a GPU, checks it once, falls back."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ragcompress import Embedder, embedder, fast_embed
from ragcompress.fast_embed import LENGTH_BUCKET, MAX_CHARS, MAX_ROWS, MAX_TOKENS, GraphEncoder, reason
from tests.indexing.pipeline_helpers import save_tiny_embedder

QUESTIONS = [
    "Who founded Pelville?",
    "In which year did the Zarnok river flood the lower town, and who rebuilt the harbour wall after it?",
    "olive",
    "What is 38,032 divided by four?",
    "Name the mountains where the river rises.",
]
LONG = " ".join(["harbour"] * 400)  # truncated to the embedder's 256 tokens: more than MAX_TOKENS


@pytest.fixture(scope="module")
def tiny_embedder_dir(tmp_path_factory):
    return save_tiny_embedder(tmp_path_factory.mktemp("models") / "tiny-embedder")


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    """The real default embedder (all-MiniLM-L6-v2, offline), on the CPU."""
    return Embedder.load(None, device="cpu")


@pytest.mark.parametrize(
    "texts", [QUESTIONS[:1], QUESTIONS[2:3], QUESTIONS[:3], QUESTIONS, QUESTIONS * 3, [" ".join(["a"] * 120)]]
)
def test_padded_buckets_give_encodes_embeddings(minilm, texts):
    graphed = GraphEncoder(minilm.model)
    got = graphed.encode(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    np.testing.assert_allclose(got, minilm._encode(texts), atol=1e-5)
    # one bucket: rows rounded up to a power of two, tokens to a multiple of LENGTH_BUCKET
    ((rows, length),) = graphed._graphs
    assert rows == 1 << (len(texts) - 1).bit_length() and length % LENGTH_BUCKET == 0
    assert length <= MAX_TOKENS


def test_many_or_long_texts_are_left_to_encode(minilm):
    graphed = GraphEncoder(minilm.model)
    assert graphed.encode([LONG]) is None and graphed.encode(QUESTIONS[:1] * (MAX_ROWS + 1)) is None
    assert graphed.encode([]) is None and not graphed._graphs


def test_chunk_length_texts_are_not_tokenized_before_encode(minilm, monkeypatch):
    """A text of more than MAX_CHARS characters goes to encode untokenized (else it is tokenized twice);
    one under it that still has too many tokens is tokenized once here and then left to encode."""
    graphed = GraphEncoder(minilm.model)
    calls = []
    tokenize = fast_embed._tokenize
    monkeypatch.setattr(
        fast_embed, "_tokenize", lambda model, texts: calls.append(texts) or tokenize(model, texts)
    )
    chunk = " ".join(["harbour"] * (MAX_CHARS // 8 + 1))
    assert len(chunk) > MAX_CHARS and graphed.encode([QUESTIONS[0], chunk]) is None and calls == []
    dense = "9 " * (MAX_TOKENS + 10)  # under MAX_CHARS characters, over MAX_TOKENS tokens
    assert len(dense) <= MAX_CHARS and graphed.encode([dense]) is None and len(calls) == 1
    assert not graphed._graphs


def test_a_bucket_serves_every_question_that_rounds_to_it(minilm):
    """Static buffers are refilled whole: a shorter question after a longer one leaves no stale token."""
    graphed = GraphEncoder(minilm.model)
    for texts in (QUESTIONS[3:5], QUESTIONS[:1] * 2, QUESTIONS[3:5]):
        np.testing.assert_allclose(graphed.encode(texts), minilm._encode(texts), atol=1e-5)
    assert len(graphed._graphs) == 1


def test_eager_attention_reads_an_additive_mask(tiny_embedder_dir):
    model = Embedder.load(tiny_embedder_dir, device="cpu").model
    model[0].auto_model.set_attn_implementation("eager")
    graphed = GraphEncoder(model)
    assert graphed.additive
    texts = QUESTIONS[:3]
    want = model.encode(texts, convert_to_numpy=True, show_progress_bar=False)
    np.testing.assert_allclose(graphed.encode(texts), want, atol=1e-5)


def test_pipelines_it_cannot_reproduce_are_named(tiny_embedder_dir):
    from sentence_transformers import SentenceTransformer

    model = Embedder.load(tiny_embedder_dir, device="cpu").model
    assert reason(model) is None
    cls = SentenceTransformer(modules=[model[0], type(model[1])(32, "cls")], device="cpu")
    assert reason(cls) == "its pooling is not the mean of the tokens"
    assert "not Transformer, Pooling" in reason(SentenceTransformer(modules=[model[0]], device="cpu"))
    with pytest.raises(ValueError, match="GraphEncoder cannot run this embedder: its pooling"):
        GraphEncoder(cls)


def test_embedder_routes_a_few_texts_through_it_where_graphs_run(minilm, monkeypatch):
    monkeypatch.setattr(embedder, "GRAPH_DEVICES", ("cuda", "cpu"))
    routed = Embedder(minilm.model, minilm.id)
    np.testing.assert_allclose(routed.encode(QUESTIONS), minilm._encode(QUESTIONS), atol=1e-5)
    assert isinstance(routed._graph_encoder, GraphEncoder)
    many = QUESTIONS * 4  # more than MAX_ROWS: encode, as indexing does; so are long texts
    assert len(many) > MAX_ROWS
    np.testing.assert_allclose(routed.encode(many), minilm._encode(many), atol=1e-6)
    np.testing.assert_allclose(routed.encode([LONG]), minilm._encode([LONG]), atol=1e-6)
    # the two probe questions it was checked with, then the five questions
    assert sorted(routed._graph_encoder._graphs) == [(2, 32), (8, 32)]
    off = Embedder(minilm.model, minilm.id, graphs=False)
    off.encode(QUESTIONS[:1])
    assert off._graph_encoder is None


def test_warm_up_captures_the_buckets_of_short_questions(minilm, monkeypatch):
    monkeypatch.setattr(embedder, "GRAPH_DEVICES", ("cuda", "cpu"))
    warm = Embedder(minilm.model, minilm.id)
    warm.warm_up((1, 2, 32))  # 32 rows are more than MAX_ROWS: encode's, nothing to capture
    assert sorted(warm._graph_encoder._graphs) == [(r, n) for r in (1, 2) for n in (16, 32, 48, 64)]
    monkeypatch.undo()
    cold = Embedder(minilm.model, minilm.id)  # on a CPU by default: no graphs, nothing captured
    cold.warm_up()
    assert cold._graph_encoder is False


def test_not_on_a_cpu_by_default(minilm):
    fresh = Embedder(minilm.model, minilm.id)
    fresh.encode(QUESTIONS[:1])
    assert fresh._graph_encoder is False


def test_a_graph_encoder_that_disagrees_or_fails_is_dropped_with_one_warning(minilm, monkeypatch, caplog):
    monkeypatch.setattr(embedder, "GRAPH_DEVICES", ("cuda", "cpu"))
    monkeypatch.setattr(GraphEncoder, "encode", lambda self, texts: np.zeros((len(texts), 384), np.float32))
    wrong = Embedder(minilm.model, minilm.id)
    with caplog.at_level(logging.WARNING, logger="ragcompress.embedder"):
        rows = wrong.encode(QUESTIONS[:2])
        wrong.encode(QUESTIONS[:2])
    np.testing.assert_allclose(rows, minilm._encode(QUESTIONS[:2]), atol=1e-6)
    assert wrong._graph_encoder is False
    assert [r.getMessage()[:43] for r in caplog.records] == ["embedding through encode, not CUDA graphs: "]
    assert "they differ by" in caplog.records[0].getMessage()

    def fail(self, texts):
        raise RuntimeError("operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(GraphEncoder, "encode", fail)
    caplog.clear()
    failing = Embedder(minilm.model, minilm.id)
    with caplog.at_level(logging.WARNING, logger="ragcompress.embedder"):
        np.testing.assert_allclose(failing.encode(QUESTIONS[:1]), minilm._encode(QUESTIONS[:1]), atol=1e-6)
    assert failing._graph_encoder is False
    assert caplog.records[0].getMessage().endswith("operation not permitted when stream is capturing")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_on_a_gpu_the_graphs_replay_encodes_embeddings(tmp_path):
    """A random BERT of all-MiniLM-L6-v2's shape (the real one is not on the GPU machine) over a
    word-level tokenizer: captured graphs give encode's embeddings, and warm_up captures every bucket."""
    from ragcompress_tools.random_models import save_random_embedder, word_level_tokenizer

    words = {"<unk>": 0, "<pad>": 1} | {f"w{i}": i for i in range(2, 1000)}
    tokenizer = word_level_tokenizer(words, "<unk>", unk_token="<unk>", pad_token="<pad>")
    folder = save_random_embedder(tmp_path / "bert", tokenizer, 6, 384, 12, 1536, max_seq_length=256)
    on_gpu = Embedder.load(folder, device="cuda")
    rng = np.random.default_rng(0)
    for lengths in ([7], [30, 3, 17], [200], [5] * 16):  # 200 tokens: encode's
        texts = [" ".join(f"w{i}" for i in rng.integers(2, 1000, n)) for n in lengths]
        np.testing.assert_allclose(on_gpu.encode(texts), on_gpu._encode(texts), atol=1e-4)
    graphed = on_gpu._graph_encoder
    assert isinstance(graphed, GraphEncoder) and all(b.graph is not None for b in graphed._graphs.values())
    assert sorted(graphed._graphs) == [(1, 16), (2, 16), (4, 32), (16, 16)]  # (2, 16): the probes
    on_gpu.warm_up((1, 2))
    assert {(r, n) for r in (1, 2) for n in (16, 32, 48, 64)} <= set(graphed._graphs)
