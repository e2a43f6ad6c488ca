"""A writer process for the reader-during-write tests: replaces one document per commit, compacting now and
then, with embeddings next to the test's query so the reader's hits are the chunks it deletes next."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

import tests.store.writer_child  # noqa: F401  (sets up the bare ragcompress package first)
from ragcompress.store import ChunkInput, Store


def churn(path: str, query: list[float], stop, seconds: float, conn) -> None:
    """Commit until ``stop`` is set (or ``seconds`` pass), then send the number of commits."""
    store = Store.open(Path(path), readonly=False)
    compressor = store.manifest.compressor
    rng = np.random.default_rng(0)
    near = np.asarray(query, np.float32)
    chunks = [ChunkInput("churned text", 0, 12, 3), ChunkInput("more churned text", 13, 30, 4)]
    conn.send("ready")
    commits, deadline = 0, time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        with store.begin_update() as writer:
            writer.remove_document(f"churn{commits - 1}")
            embeddings = near + rng.normal(scale=0.01, size=(2, near.size)).astype(np.float32)
            vectors = [torch.randn(compressor.summary_length, compressor.hidden_size) for _ in chunks]
            writer.add_document(
                f"churn{commits}", f"churn{commits}.txt", str(commits), chunks, embeddings, vectors
            )
        commits += 1
        if commits % 7 == 0:
            store.compact(min_dead_fraction=0.01)  # deletes shard files a reader may have pinned
    store.close()
    conn.send(commits)
