"""The server follows its index: an update that commits is seen by the next request, a rebuild with other
models makes the worker open the index again; a full queue is refused with a 503, not queued without end."""

from __future__ import annotations

import threading

import httpx
import pytest

from indexing.pipeline import index_corpus
from ragcompress.loading import load_compressor
from ragcompress.retrieval import Retriever
from ragcompress.serve.batching import AnswerOptions, Batcher, ServerBusyError
from tests.indexing import pipeline_helpers as helpers
from tests.serve.conftest import build_index, open_batcher, running

TRAINS = "When did the first public steam railway open between Stockton and Darlington?"


def test_an_update_committed_while_serving_is_seen_by_the_next_request(tmp_path, tiny_models):
    corpus = helpers.write_corpus(tmp_path / "corpus", topics=["rivers", "baking", "bees"])
    index = build_index(corpus, tmp_path / "index", tiny_models)
    with open_batcher(index, tiny_models, window=0) as batcher, running(batcher) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            before = client.get("/health").json()["generation"]
            found = client.post("/search", json={"query": TRAINS, "k": 1}).json()["passages"]
            assert found[0]["doc_id"] != "trains"
            helpers.write_corpus(corpus, topics=["trains"])
            build_index(corpus, index, tiny_models)  # an incremental update: adds trains.txt
            found = client.post("/search", json={"query": TRAINS, "k": 1}).json()["passages"]
            assert found[0]["doc_id"] == "trains"
            assert client.get("/health").json()["generation"] > before
            answer = client.post("/answer", json={"question": TRAINS, "k": 1, "max_new_tokens": 2}).json()
            assert answer["sources"] == ["trains"]


def test_a_rebuild_with_another_compressor_reopens_the_index(tmp_path, tiny_models):
    corpus = helpers.write_corpus(tmp_path / "corpus", topics=["rivers", "chess"])
    index = build_index(corpus, tmp_path / "index", tiny_models)
    other = load_compressor(str(helpers.save_tiny_compressor(tmp_path / "other-compressor")), device="cpu")
    _, embedder = tiny_models
    compressors = [tiny_models[0], other]
    opened = []

    def open_retriever() -> Retriever:  # first the index's compressor, then the one it is rebuilt with
        opened.append(compressors[len(opened)])
        return Retriever(index, model=opened[-1], embedder=embedder)

    with Batcher(open_retriever, window=0) as batcher:
        options = AnswerOptions(k=1, mode="fused", max_new_tokens=2)
        assert batcher.answer("How does the knight move?", options).result(timeout=60).sources == ["chess"]
        compressor_id = batcher.compressor_id
        helpers.write_corpus(corpus, topics=["trains"])
        index_corpus_with(corpus, index, (other, embedder))
        answer = batcher.answer(TRAINS, options).result(timeout=60)
        assert answer.sources == ["trains"] and len(opened) == 2
        assert batcher.compressor_id != compressor_id


def index_corpus_with(corpus, index, models) -> None:
    compressor, embedder = models
    index_corpus(
        corpus, index, model=compressor, embedder=embedder, chunk_tokens=helpers.CHUNK_TOKENS,
        overlap=helpers.OVERLAP, progress=False, rebuild=True,
    )  # fmt: skip


def test_a_full_queue_is_refused_with_503(serve_index, tiny_models):
    release, holding = threading.Event(), threading.Event()

    def hold(item) -> None:  # the worker streams and waits here, so nothing else is taken off the queue
        holding.set()
        release.wait(60)

    with open_batcher(serve_index, tiny_models, window=0, queue_size=1) as batcher, running(batcher) as url:
        streamed = batcher.stream("q", AnswerOptions(k=1, max_new_tokens=1), hold)
        assert holding.wait(60)
        waiting = batcher.search("bees", 1)  # fills the queue
        with pytest.raises(ServerBusyError, match="1 requests are already waiting"):
            batcher.search("bees", 1)
        response = httpx.post(f"{url}/search", json={"query": "bees", "k": 1}, timeout=60)
        assert response.status_code == 503
        assert response.json() == {"error": "1 requests are already waiting; retry later"}
        release.set()
        assert waiting.result(timeout=60)[0].doc_id == "bees"
        assert streamed.result(timeout=60).query == "q"
