"""Prefill / decode timing of a generation without touching the generation code.

Forward hooks on the model time every forward pass; one that starts with an empty cache is a prefill
(the soft prompt and the prompt), every other one is a decoding step. This works the same for HF
``generate`` (greedy, sampling, beam search) and for REPLUG's own loop. The fast decode path
(modeling/fast_decode.py) runs no forward the hooks would see as one: it reports its two phases itself,
and the hooks stand aside while it runs.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch

from ragcompress.modeling.cache_api import cache_in
from ragcompress.modeling.phases import sync_device, unwatch_phases, watch_phases


class ForwardTimer:
    """Seconds spent in prefill and decode forward passes of ``model`` while active."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.prefill = 0.0
        self.decode = 0.0
        self._started: float | None = None
        self._is_prefill = False
        self._handles: list = []
        self._fast = False  # inside a fast_generate call, which reports its own phases
        try:
            self._device = next(model.parameters()).device
        except StopIteration:
            self._device = None

    def _before(self, module, args, kwargs) -> None:
        if self._fast:
            return
        cache = cache_in(kwargs)  # generate passes past_key_values before transformers 5.24, cache after
        self._is_prefill = cache is None or cache.get_seq_length() == 0
        sync_device(self._device)
        self._started = time.perf_counter()

    def _after(self, module, args, kwargs, output) -> None:
        if self._started is None:
            return
        sync_device(self._device)
        elapsed = time.perf_counter() - self._started
        if self._is_prefill:
            self.prefill += elapsed
        else:
            self.decode += elapsed
        self._started = None

    def fast_started(self) -> None:
        self._fast = True

    def fast_finished(self, prefill: float, decode: float) -> None:
        self._fast = False
        self.prefill += prefill
        self.decode += decode

    def __enter__(self) -> ForwardTimer:
        watch_phases(self.model, self)
        self._handles = [
            self.model.register_forward_pre_hook(self._before, with_kwargs=True),
            self.model.register_forward_hook(self._after, with_kwargs=True),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        unwatch_phases(self.model, self)
        for handle in self._handles:
            handle.remove()
        self._handles = []


@contextmanager
def stopwatch(timings: dict[str, float], key: str):
    """Add the seconds spent inside the block to ``timings[key]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - started
