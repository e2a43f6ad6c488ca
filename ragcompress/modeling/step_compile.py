"""How the fast decode step (modeling/fast_decode.py) goes through ``torch.compile``: the settings, and
regional compilation (one decoder layer compiled for all of them)."""

from __future__ import annotations

import functools

import torch

# a setting's name (command lines) -> fast_generate's ``compile``
COMPILE_SETTINGS = {"off": False, "static": True, "dynamic": "dynamic", "regional": "regional"}


def check_compile(value, name: str = "compile") -> None:
    """``fast_generate``'s ``compile`` must be False, True (static shapes), "dynamic" or "regional"."""
    if value not in COMPILE_SETTINGS.values():
        raise ValueError(f"{name}={value!r}: use False, True (static shapes), 'dynamic' or 'regional'")


def decoder_layers(core) -> torch.nn.ModuleList | None:
    """The decoder's layers when they are one ``ModuleList`` of one class at ``core.model.layers`` (every
    Llama-family model), else None."""
    layers = getattr(getattr(core, "model", None), "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or not len(layers):
        return None
    return layers if len({type(layer) for layer in layers}) == 1 else None


_LAYER_FORWARDS: dict[type, object] = {}  # decoder layer class -> its forward through torch.compile


def run_with_layers_compiled(layers: torch.nn.ModuleList, function, *args):
    """``function(*args)`` with every layer of ``layers`` running its class's compiled ``forward``.

    Regional compilation: one compiled layer serves all of them, so a warm-up traces and builds one layer
    rather than the whole decoder (32 times less on a 7B model). The layer is passed to the compiled
    function, so no graph keeps a layer's own weights or index: its index is read as a symbolic integer
    (``allow_unspec_int_on_nn_module``) and handed to the cache's ``update``, which the caller's cache
    must leave out of the graph (``torch.compiler.disable``), so layer 12 does not recompile what layer 0
    compiled. Afterwards the layers run their own ``forward`` again.
    """
    kind = type(layers[0])
    if kind not in _LAYER_FORWARDS:
        _LAYER_FORWARDS[kind] = torch.compile(kind.forward, dynamic=True)
    compiled = _LAYER_FORWARDS[kind]
    for layer in layers:
        layer.forward = functools.partial(compiled, layer)
    try:
        with torch._dynamo.config.patch(allow_unspec_int_on_nn_module=True):
            return function(*args)
    finally:
        for layer in layers:
            layer.__dict__.pop("forward", None)
