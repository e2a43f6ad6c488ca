"""A small real index (tiny random compressor, real default embedder) and a server over it on 127.0.0.1.

The server is the real app (`create_app`) under uvicorn in a thread of the test process, on a free port;
the test talks to it with httpx like any client. Its `Batcher` waits 200 ms for company, so requests sent
together are answered in one batch.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from indexing.pipeline import index_corpus  # noqa: E402
from ragcompress.retrieval import Retriever  # noqa: E402
from ragcompress.serve.app import create_app  # noqa: E402
from ragcompress.serve.batching import Batcher  # noqa: E402
from tests.indexing import pipeline_helpers as helpers  # noqa: E402

private_data_root, tiny_compressor_dir, tiny_models = (
    helpers.private_data_root,
    helpers.tiny_compressor_dir,
    helpers.tiny_models,
)
QUESTIONS = [
    "Which planet has the Great Red Spot?",
    "How does the knight move in chess?",
    "What do worker bees make wax from?",
    "When did the first public steam railway open?",
]


def build_index(corpus: Path, index: Path, models) -> Path:
    compressor, embedder = models
    index_corpus(
        corpus, index, model=compressor, embedder=embedder, chunk_tokens=helpers.CHUNK_TOKENS,
        overlap=helpers.OVERLAP, progress=False,
    )  # fmt: skip
    return index


@pytest.fixture(scope="session")
def serve_index(tmp_path_factory, tiny_models) -> Path:
    root = tmp_path_factory.mktemp("serve")
    return build_index(helpers.write_corpus(root / "corpus"), root / "index", tiny_models)


@contextlib.contextmanager
def running(batcher: Batcher) -> Iterator[str]:
    """The app over ``batcher`` served by uvicorn in a thread on 127.0.0.1; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(create_app(batcher), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def open_batcher(index: Path, models, **kwargs) -> Batcher:
    """A Batcher over ``index`` with loaded ``models`` (not started: use it in a ``with`` block)."""
    compressor, embedder = models
    return Batcher(lambda: Retriever(index, model=compressor, embedder=embedder), **kwargs)


@pytest.fixture(scope="session")
def server(serve_index, tiny_models) -> Iterator[tuple[str, Batcher]]:
    with open_batcher(serve_index, tiny_models, max_batch=8, window=0.2) as batcher, running(batcher) as url:
        yield url, batcher


@pytest.fixture
def client(server) -> Iterator[httpx.Client]:
    url, _ = server
    with httpx.Client(base_url=url, timeout=120) as opened:
        yield opened


@pytest.fixture(scope="session")
def reference(serve_index, tiny_models) -> Iterator[Retriever]:
    """A Retriever of its own over the same index and models: what the server's answers must equal."""
    compressor, embedder = tiny_models
    with Retriever(serve_index, model=compressor, embedder=embedder) as opened:
        yield opened
