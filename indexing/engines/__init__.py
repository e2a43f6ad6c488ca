"""Engines that embed and compress chunks for the indexing pipeline: ``local`` (default) and ``ray``.

    with make_engine("local", compressor=None, embedder=None) as engine:
        models = engine.start()
        for result in engine.map(batches):
            ...

To add an engine, subclass ``Engine`` (``start`` and an in-order ``map``) and register it in ``ENGINES``.
"""

from __future__ import annotations

from indexing.engines.base import (
    CompressorSource,
    EmbedderSource,
    Engine,
    EngineError,
    ModelsInfo,
    WorkBatch,
    WorkResult,
)
from indexing.engines.local import LocalEngine

ENGINES = ("local", "ray")


def make_engine(
    name: str,
    compressor: CompressorSource = None,
    embedder: EmbedderSource = None,
    device: str | None = None,
    workers: int | None = None,
) -> Engine:
    """The engine called ``name``; ``workers`` is the number of Ray actors (default: one per GPU, else 1)."""
    if name == "local":
        return LocalEngine(compressor, embedder, device)
    if name == "ray":
        # Imported only when asked for: ray is an optional extra.
        from indexing.engines.ray_engine import RayEngine

        return RayEngine(compressor, embedder, device, workers=workers)
    raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


__all__ = [
    "ENGINES",
    "CompressorSource",
    "EmbedderSource",
    "Engine",
    "EngineError",
    "LocalEngine",
    "ModelsInfo",
    "WorkBatch",
    "WorkResult",
    "make_engine",
]
