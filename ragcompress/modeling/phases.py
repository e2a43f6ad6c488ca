"""How long `fast_generate` calls spend on the prompt and on the new tokens, for whoever asks.

Forward hooks cannot time the fast decode path: it calls the inner decoder, or replays a graph that runs
no Python at all. So it reports its two phases itself to the watchers registered here (retrieval/timing.py's
`ForwardTimer` is one), and only syncs the device to time them when somebody watches.
"""

from __future__ import annotations

import contextlib
import weakref

import torch

from ragcompress.modeling.models import unwrap

_WATCHERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # core -> watchers of its calls


def watch_phases(model, watcher) -> None:
    """Tell ``watcher`` about every `fast_generate` call on ``model`` until `unwatch_phases`:
    ``watcher.fast_started()`` as it starts, ``watcher.fast_finished(prefill_s, decode_s)`` as it ends
    (the prompt's seconds and the new tokens', timed with device syncs; zeros if it failed)."""
    _WATCHERS.setdefault(unwrap(model), []).append(watcher)


def unwatch_phases(model, watcher) -> None:
    watchers = _WATCHERS.get(unwrap(model), [])
    if watcher in watchers:
        watchers.remove(watcher)


@contextlib.contextmanager
def phases_told(model):
    """Around one `fast_generate` call: tells the model's watchers it started, yields the list the call
    fills with its prefill and decode seconds (None when nobody watches: no syncs), and tells them those."""
    watchers = list(_WATCHERS.get(unwrap(model), ()))
    for watcher in watchers:
        watcher.fast_started()
    phases = [0.0, 0.0]
    try:
        yield phases if watchers else None
    finally:
        for watcher in watchers:
            watcher.fast_finished(*phases)


def sync_device(device: torch.device | None) -> None:
    """Wait for ``device``'s queued work (CUDA runs asynchronously: a clock read before would stop early)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
