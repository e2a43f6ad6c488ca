"""How long `fast_generate` calls spend on the prompt and on the new tokens, for whoever asks.

Forward hooks cannot time the fast decode path: it calls the inner decoder, or replays a graph that runs
no Python at all. So it reports its two phases itself to the watchers registered here (retrieval/timing.py's
`ForwardTimer` is one), and only times them when somebody watches. On a GPU the times are CUDA events read
once the call has finished, so timing never makes the host wait for the device mid-call (a sync before
the prompt would leave the GPU idle while the host launches it).
"""

from __future__ import annotations

import contextlib
import time
import weakref

import torch

from ragcompress.modeling.models import unwrap

_WATCHERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # core -> watchers of its calls


def watch_phases(model, watcher) -> None:
    """Tell ``watcher`` about every `fast_generate` call on ``model`` until `unwatch_phases`:
    ``watcher.fast_started()`` as it starts, ``watcher.fast_finished(prefill_s, decode_s)`` as it ends
    (the prompt's seconds and the new tokens'; zeros if it failed)."""
    _WATCHERS.setdefault(unwrap(model), []).append(watcher)


def unwatch_phases(model, watcher) -> None:
    watchers = _WATCHERS.get(unwrap(model), [])
    if watcher in watchers:
        watchers.remove(watcher)


class PhaseClock:
    """The prompt's and the new tokens' seconds of one call, from three marks made as it goes (before the
    prompt, after it, after the last token): CUDA events on a GPU, the host clock elsewhere."""

    def __init__(self) -> None:
        self._marks: list = []

    def mark(self, device: torch.device) -> None:
        if device.type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(device))
            self._marks.append(event)
        else:
            self._marks.append(time.perf_counter())

    def seconds(self) -> tuple[float, float]:
        """(prefill, decode); zeros for a call that failed before its last mark."""
        if len(self._marks) != 3:
            return 0.0, 0.0
        before, between, after = self._marks
        if isinstance(after, torch.cuda.Event):
            after.synchronize()
            return before.elapsed_time(between) / 1e3, between.elapsed_time(after) / 1e3
        return between - before, after - between


@contextlib.contextmanager
def phases_told(model):
    """Around one `fast_generate` call: tells the model's watchers it started, yields the `PhaseClock` the
    call marks (None when nobody watches: nothing timed), and tells them its prefill and decode seconds."""
    watchers = list(_WATCHERS.get(unwrap(model), ()))
    for watcher in watchers:
        watcher.fast_started()
    clock = PhaseClock() if watchers else None
    try:
        yield clock
    finally:
        phases = clock.seconds() if clock is not None else (0.0, 0.0)
        for watcher in watchers:
            watcher.fast_finished(*phases)


def sync_device(device: torch.device | None) -> None:
    """Wait for ``device``'s queued work (CUDA runs asynchronously: a clock read before would stop early)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
