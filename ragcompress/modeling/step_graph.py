"""The fast decode path's step for one batch and cache length (modeling/fast_decode.py runs it): its
static cache, input buffers and captured CUDA graphs, made on first use and kept per model. How the
step goes through torch.compile: step_compile.py.
"""

from __future__ import annotations

import collections
import functools
import weakref

import torch
from transformers import StaticCache

from ragcompress.modeling.cache_api import forward_cache_kwarg, takes_cache_position
from ragcompress.modeling.models import unwrap
from ragcompress.modeling.step_compile import decoder_layers, run_with_layers_compiled

# compile="dynamic" compiles the short prompts' step too (those replayed as a graph; symbolic lengths): on
# one H100 it took batch 1's fused first token from 21.9 to 16.2 ms
# (benchmarks/results/fused_decode-h100-compile-prompt.json)
COMPILE_PROMPT = True
# Captured prompt graphs kept per step (one per prompt length bucket met, least recently used dropped
# beyond it): each holds its own memory pool, tens of MB for a 7B model's prompt of ~550 slots.
MAX_PROMPT_GRAPHS = 8


class StepGraph:
    """Decoding for a fixed batch and cache length: the cache, static input buffers, captured graphs.

    ``keep[b, j]`` says whether row ``b`` may attend to cache slot ``j``; the prompt step and every decode
    step read their 4-D mask from it, so one captured graph serves any question of its bucket.
    """

    def __init__(
        self, core, batch: int, length: int, dtype, device: torch.device, compile: bool | str = False
    ):
        self.core, self.batch, self.length, self.device = core, batch, length, device
        # looked up here, not in the step, so a compiled step traces none of it
        self.cache_kwarg = forward_cache_kwarg(type(core.model))
        self.pass_slot = takes_cache_position(type(core.model))
        self.cache = StaticCache(config=core.config, max_cache_len=length)
        layers = decoder_layers(core) if compile == "regional" else None
        if layers is not None:  # each layer compiled, the cache's writes between its graphs (step_compile)
            self.cache.update = torch.compiler.disable(self.cache.update)
            self.run = functools.partial(run_with_layers_compiled, layers, self._step)
            self.fill = functools.partial(run_with_layers_compiled, layers, self._prompt)
            compiled_prompt = False  # nothing traced writes the cache: no buffers to create first (below)
        else:  # "regional" without layers to compile apart compiles the whole step, as "dynamic" does
            dynamic = compile in ("dynamic", "regional")
            self.run = torch.compile(self._step, dynamic=dynamic) if compile else self._step
            compiled_prompt = dynamic and COMPILE_PROMPT  # static: a compilation per prompt length
            self.fill = torch.compile(self._prompt, dynamic=True) if compiled_prompt else self._prompt
        self.tokens = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.positions = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.keep = torch.zeros(batch, length, dtype=torch.bool, device=device)
        eager = getattr(core.config, "_attn_implementation", None) == "eager"
        self.mask_dtype = dtype if eager else torch.bool  # eager adds the mask to the scores
        self.logits: torch.Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        # prompt slots -> (graph, embeds, positions, logits), least recently used first
        self.prompt_graphs: collections.OrderedDict[int, tuple] = collections.OrderedDict()
        # whether the cache is zeroed: each call wipes it as it ends, so the next one starts on a clean cache
        # without zeroing it first; a call that failed part-way leaves this False and the next one wipes it
        self.clean = False
        self._zeroed: list[torch.Tensor] | None = None  # what `wipe` zeroes, listed once
        if device.type == "cuda":
            self.keep[:, 0] = True
            self.graph, self.logits = self._capture(self.run)
        elif compiled_prompt:  # the cache's buffers exist before the compiled prompt traces
            self._step()
            self.cache.reset()

    def _decoder(self, mask: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor, **inputs):
        if self.mask_dtype != torch.bool:
            mask = torch.zeros_like(mask, dtype=self.mask_dtype).masked_fill(
                ~mask, torch.finfo(self.mask_dtype).min
            )
        kwargs = {self.cache_kwarg: self.cache}
        if self.pass_slot:  # transformers < 5.4 writes the cache where this says
            kwargs["cache_position"] = slots
        out = self.core.model(attention_mask=mask, position_ids=positions, use_cache=True, **inputs, **kwargs)
        return self.core._logits(out.last_hidden_state[:, -1]).float()

    def _step(self) -> torch.Tensor:
        return self._decoder(self.keep[:, None, None, :], self.positions, self.slot, input_ids=self.tokens)

    def _prompt(self, embeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        # query i sits in slot i: it sees the kept slots up to itself, and always itself (a padding slot
        # attending to nothing would give NaN keys and values, which poison even masked attention)
        slots = torch.arange(embeds.shape[1], device=embeds.device)
        every = torch.arange(self.length, device=embeds.device)
        causal = every[None, :] <= slots[:, None]
        mask = (causal[None] & self.keep[:, None, :]) | (every[None, :] == slots[:, None])[None]
        return self._decoder(mask[:, None], positions, slots, inputs_embeds=embeds)

    def _capture(self, run):
        # Warm-up runs initialise the cache's buffers and the libraries' workspaces outside the capture;
        # what they write into the cache is wiped by the reset below (and every generation finds it wiped).
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.cache.reset()  # a prompt fills slots from 0: each run must find the cache empty
                run()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = run()
        self.cache.reset()
        return graph, out

    def prompt(self, embeds: torch.Tensor, keep: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Fill slots ``[0, n)`` of the (reset) cache with the prompt; logits of its last slot."""
        n = embeds.shape[1]
        self.keep.zero_()
        self.keep[:, :n] = keep
        if self.graph is None:
            return self.fill(embeds, positions)
        if n in self.prompt_graphs:
            self.prompt_graphs.move_to_end(n)
        else:
            while len(self.prompt_graphs) >= MAX_PROMPT_GRAPHS:  # its graph and memory pool go with it
                self.prompt_graphs.popitem(last=False)
            static_embeds, static_positions = embeds.clone(), positions.clone()
            graph, logits = self._capture(lambda: self.fill(static_embeds, static_positions))
            self.prompt_graphs[n] = (graph, static_embeds, static_positions, logits)
        graph, static_embeds, static_positions, logits = self.prompt_graphs[n]
        static_embeds.copy_(embeds)
        static_positions.copy_(positions)
        graph.replay()
        return logits

    def wipe(self) -> None:
        """Zero the cache (`reset_cache`) in one launch, its tensors listed once they are all it takes."""
        if self._zeroed is None:
            self._zeroed = reset_cache(self.cache)
        else:
            torch._foreach_zero_(self._zeroed)
        self.clean = True

    def step(self) -> torch.Tensor:
        if self.graph is None:
            return self.run()
        self.graph.replay()
        return self.logits


def reset_cache(cache: StaticCache) -> list[torch.Tensor] | None:
    """``cache.reset()`` in one multi-tensor launch: every layer's keys and values zeroed and its write
    position back at slot 0. Returns the tensors it zeroed when zeroing them is all a reset of this cache
    takes (every layer allocated, every write counter a tensor), so `StepGraph.wipe` zeroes just those
    next time; None otherwise.

    ``reset()`` zeroes layer by layer, about a hundred launches on a 32-layer model (2.2 ms of host time
    per call in the batch-1 profile, when it ran before each prompt). Zeroing is kept, rather than only
    rewinding the write position: the masks keep old slots out of every softmax, but a NaN left by an
    overflowing generation would still poison the next ones through the zero weights it meets.
    """
    tensors, complete = [], True
    for layer in cache.layers:
        if not hasattr(layer, "keys") or not hasattr(layer, "is_initialized"):
            cache.reset()  # a layer of another shape: its own reset
            return None
        if layer.is_initialized:
            tensors += [layer.keys, layer.values]
        else:
            complete = False
        length = getattr(layer, "cumulative_length", None)
        if isinstance(length, torch.Tensor):
            tensors.append(length)
        elif isinstance(length, int):
            layer.cumulative_length = 0
            complete = False
    if tensors:
        torch._foreach_zero_(tensors)
    return tensors if complete else None


GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {its shape's key: StepGraph}


def step_graph(core, batch: int, length: int, dtype, device, compile: bool | str) -> StepGraph:
    """The kept StepGraph of ``core`` for this batch, cache length and compilation (made on first use)."""
    graphs = GRAPHS.setdefault(core, {})
    key = (batch, length, dtype, str(device), getattr(core.config, "_attn_implementation", None))
    key += (("compiled", compile if isinstance(compile, str) else "static"),) if compile else ()
    if key not in graphs:
        graphs[key] = StepGraph(core, batch, length, dtype, device, compile)
    return graphs[key]


def release_fast_decode(model) -> None:
    """Free the static caches and captured graphs kept for ``model`` (the next call captures afresh)."""
    GRAPHS.pop(unwrap(model), None)
