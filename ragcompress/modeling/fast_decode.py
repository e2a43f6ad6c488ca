"""Fast decoding: a static KV cache and a decode step replayed as a CUDA graph.

``generate`` spends most of a decoding step in Python and kernel launches: at batch 1 a 7B model on one
H200 decodes at about an eighth of what memory bandwidth allows. Here the step is cut to what must run
on the device, so it can be captured once and replayed:

* one `StaticCache` holds ``soft-prompt slots + prompt + new tokens``, its length rounded up to a bucket
  (`CACHE_BUCKET`) and the batch to a power of two, so a new question length reuses the captured graph;
  each call zeroes it as it ends (`StepGraph.wipe`, one launch), so the next call's prompt starts at once;
* a short prompt (a fused one at small batch: launch-bound) is left-padded to a bucket
  (`PROMPT_BUCKET`), laid out and numbered as the AutoCompressor's forward does for a generation's one
  segment and replayed as a captured graph too; a long one (compute-bound) goes through that forward;
* each new token is one call of the decoder with a prepared 4-D mask over the cache and explicit
  position ids, then the model's own logits head: no mask building, no cache bookkeeping in Python, no
  host-device sync. On CUDA that call is captured in a `torch.cuda.CUDAGraph` (per batch and cache
  bucket, kept for the life of the model); elsewhere it runs as is, which is how CPU tests check it.

Token choice (greedy, or sampling with temperature / top-k / top-p) matches ``generate``'s, and so do
finished rows (padded with ``pad_token_id``) and the output (prompt followed by new tokens).
`unsupported_reason` says when this path does not apply; callers then use ``generate``.
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
import weakref
from collections.abc import Mapping

import torch

from ragcompress.modeling.models import unwrap
from ragcompress.modeling.phases import phases_told
from ragcompress.modeling.positions import segment_position_ids
from ragcompress.modeling.sampling import choose_next_token
from ragcompress.modeling.step_compile import check_compile
from ragcompress.modeling.step_graph import GRAPHS, release_fast_decode, step_graph

logger = logging.getLogger(__name__)

# Cache lengths are rounded up to a multiple of this many slots. Every decode step attends over the whole
# bucket: on one H100, fused batch 16 (640 slots used) decoded 2.7 % faster at 128 than at 256 (768 slots),
# at the cost of a captured graph (and, with compile=True, a compilation) for twice as many lengths.
CACHE_BUCKET = 128
# Prompts (soft prompt + text) are left-padded to a multiple of this many slots. Batch 1's fused first token
# (545 slots, one H100, end to end) took 19.8 ms at 64 (576 slots), 19.3 at 16 (560) and 19.0 at 8 (552);
# each bucket a question meets costs a captured prompt graph, at most step_graph.MAX_PROMPT_GRAPHS kept per
# batch and cache bucket (benchmarks/README.md, first-token profile).
PROMPT_BUCKET = 16
PROMPT_GRAPH_TOKENS = 2048  # prompts of at most this many slots × rows are replayed as a graph too
# generate arguments this path implements; any other sends the call to generate
SUPPORTED_KWARGS = frozenset(
    {
        "max_new_tokens",
        "do_sample",
        "temperature",
        "top_k",
        "top_p",
        "pad_token_id",
        "eos_token_id",
        "streamer",
    }
)
MASKED_ATTENTION = ("sdpa", "eager")  # implementations that take a prepared 4-D mask as it is


def unsupported_reason(model, generate_kwargs: Mapping) -> str | None:
    """Why `fast_generate` cannot run this model with these arguments, or None when it can."""
    core = unwrap(model)
    if core.position_style != "consecutive":
        return f"{type(core).__name__} numbers positions {core.position_style!r}-style"
    attention = getattr(core.config, "_attn_implementation", None)
    if attention not in MASKED_ATTENTION:
        return f"attention implementation {attention!r} takes no prepared 4-D mask (fast path: {MASKED_ATTENTION})"
    layer_types = getattr(core.config, "layer_types", None) or ()
    if any(kind != "full_attention" for kind in layer_types):
        return "the model has sliding-window or other non-full attention layers"
    other = sorted(k for k, v in generate_kwargs.items() if k not in SUPPORTED_KWARGS and v is not None)
    if other:
        return f"generate arguments {other} are not implemented by the fast path"
    return None


def batch_bucket(batch: int) -> int:
    """The batch a call of ``batch`` rows runs as (padded with copies of its first row): powers of two up
    to 16, then multiples of 16. Each bucket has its own cache and captured graphs."""
    size = 1
    while size < batch and size < 16:
        size *= 2
    return size if size >= batch else -(-batch // 16) * 16


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def _one_at_a_time(function):
    """Calls on one model take turns: they share its caches, buffers and graphs (threads of a server)."""

    @functools.wraps(function)
    def run(model, *args, **kwargs):
        core = unwrap(model)
        with _LOCKS_LOCK:
            lock = _LOCKS.setdefault(core, threading.Lock())
        with lock:
            return function(model, *args, **kwargs)

    return run


def _again_after_freeing_graphs(function):
    """A call that runs out of device memory frees the static caches and graphs kept for the model's
    other shapes and runs once more: a long-lived process keeps one per batch and cache bucket it has met,
    and a new large one (a long text prompt at batch 16) may not fit beside them. A call with a streamer is
    not run again (its reader has had the prompt already)."""

    @functools.wraps(function)
    def run(model, *args, **kwargs):
        try:
            return function(model, *args, **kwargs)
        except torch.OutOfMemoryError:
            kept = len(GRAPHS.get(unwrap(model), {}))
            if kept == 0 or kwargs.get("streamer") is not None:
                raise
        release_fast_decode(model)
        gc.collect()
        torch.cuda.empty_cache()
        logger.warning(
            "out of device memory: freed the fast path's %d kept caches and graphs; running again", kept
        )
        return function(model, *args, **kwargs)

    return run


@_one_at_a_time
@_again_after_freeing_graphs
@torch.inference_mode()  # as answering runs, so the caches kept per model serve calls from either
def fast_generate(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    softprompt: torch.Tensor | None = None,
    max_new_tokens: int = 32,
    do_sample: bool = False,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    pad_token_id: int | None = None,
    eos_token_id: int | list[int] | None = None,
    generator: torch.Generator | None = None,
    streamer=None,
    compile: bool | str = False,
) -> torch.Tensor:
    """``generate`` for an AutoCompressor through a static cache and a replayed decode step.

    ``input_ids`` / ``attention_mask`` are a left-padded ``[batch, tokens]`` prompt, ``softprompt`` the
    fused summary vectors in front of it. Returns ``[batch, tokens + new]`` like ``generate``: rows that
    finish early are padded with ``pad_token_id``, and decoding stops when every row has finished. A
    ``streamer`` gets the prompt and then each new token, as from ``generate`` (one sync per token).
    ``compile`` runs the step through ``torch.compile`` (fused kernels) before the graph captures it: a
    faster step for a warm-up of about a minute per batch and cache bucket (``True``: static shapes), so
    it is off by default. ``compile="dynamic"`` compiles with symbolic batch and cache sizes instead: two
    compilations per process and model (batch 1, larger batches), after which a new bucket only needs its
    graph captured. ``compile="regional"`` compiles one decoder layer (symbolic sizes) and runs it for every
    layer, the cache's writes between its graphs: a warm-up of one layer's compilations, not the decoder's.
    """
    check_compile(compile)
    with phases_told(model) as clock:
        reason = unsupported_reason(model, {})
        if reason is not None:
            raise ValueError(f"fast decoding does not apply: {reason}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens} must be at least 1")
        core = unwrap(model)
        if do_sample:  # what generate would use for arguments left out
            defaults = core.generation_config
            temperature = defaults.temperature if temperature is None else temperature
            top_k = defaults.top_k if top_k is None else top_k
            top_p = defaults.top_p if top_p is None else top_p
        device = core.embed_summary.weight.device
        dtype = core.embed_summary.weight.dtype
        rows, prompt = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        slots = 0 if softprompt is None else softprompt.shape[-2]
        batch = batch_bucket(rows)
        if batch > rows:  # fill the bucket with copies of the first row, dropped at the end
            extra = batch - rows
            input_ids = torch.cat([input_ids, input_ids[:1].expand(extra, -1)])
            attention_mask = torch.cat([attention_mask, attention_mask[:1].expand(extra, -1)])
            if softprompt is not None and softprompt.dim() == 3 and softprompt.shape[0] == rows:
                softprompt = torch.cat([softprompt, softprompt[:1].expand(extra, -1, -1)])
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device).long()
        filled = -(-(slots + prompt) // PROMPT_BUCKET) * PROMPT_BUCKET  # prompt slots, left-padded
        length = -(-(filled + max_new_tokens) // CACHE_BUCKET) * CACHE_BUCKET
        graph = step_graph(core, batch, length, dtype, device, compile)
        if not graph.clean:  # its first use, or the last call failed part-way
            graph.wipe()
        graph.clean = False
        if clock is not None:
            clock.mark(device)

        if batch * filled <= PROMPT_GRAPH_TOKENS:
            # A short prompt (launch-bound): laid out as the AutoCompressor lays out a generation's segment,
            # [soft prompt ; text], numbered as it numbers it (positions.py), behind padding up to the bucket,
            # and fed to the decoder directly (a captured graph on a GPU); padding is masked everywhere.
            text = core.get_input_embeddings()(input_ids)
            soft = core._check_softprompt(softprompt, batch, text)
            pieces = [text] if soft is None else [soft, text]
            padding = filled - slots - prompt
            embeds = torch.cat([text.new_zeros(batch, padding, text.shape[-1]), *pieces], dim=1)
            ones, zeros = attention_mask.new_ones, attention_mask.new_zeros
            keep = torch.cat([zeros(batch, padding), ones(batch, slots), attention_mask], dim=1)
            positions = segment_position_ids("consecutive", attention_mask, prompt, slots, slots, 0)
            positions = torch.cat([positions.new_zeros(batch, padding), positions], dim=1)
            logits = graph.prompt(embeds, keep.bool(), positions)
            graph.positions.copy_(positions[:, -1:])
        else:  # a long one (compute-bound) through the AutoCompressor's forward, whose mask lets SDPA go faster
            out = core(
                input_ids=input_ids,
                attention_mask=attention_mask,
                softprompt=softprompt,
                use_cache=True,
                logits_to_keep=1,
                cache=graph.cache,
            )
            logits = out.logits[:, -1].float()
            filled = slots + prompt
            graph.keep.zero_()
            graph.keep[:, :slots] = True
            graph.keep[:, slots:filled] = attention_mask.bool()
            graph.positions.copy_(slots + attention_mask.sum(-1, keepdim=True) - 1)
        if clock is not None:
            clock.mark(device)
        if streamer is not None:
            streamer.put(input_ids[:rows].cpu())

        if eos_token_id is None:
            eos_token_id = []
        eos = torch.tensor(
            [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id), device=device
        )
        pad = pad_token_id if pad_token_id is not None else (int(eos[0]) if len(eos) else 0)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        new = torch.full((batch, max_new_tokens), pad, dtype=torch.long, device=device)
        steps = max_new_tokens
        for step in range(max_new_tokens):
            token = choose_next_token(logits, do_sample, temperature, top_k, top_p, generator)
            token = torch.where(finished, torch.full_like(token, pad), token)
            new[:, step] = token
            if streamer is not None:
                streamer.put(token[:rows].cpu())
            finished |= torch.isin(token, eos)
            # a sync every 8 steps (not every step) to stop once every row is done
            if len(eos) and (step % 8 == 7 or step == max_new_tokens - 1) and bool(finished[:rows].all()):
                steps = _last_needed_step(new[:rows, : step + 1], eos) + 1
                break
            if step == max_new_tokens - 1:
                break
            graph.tokens.copy_(token[:, None])
            graph.positions.add_(1)
            graph.slot.fill_(filled + step)
            graph.keep[:, filled + step] = True
            logits = graph.step()
        if clock is not None:
            clock.mark(device)
        if streamer is not None:
            streamer.end()
        output = torch.cat([input_ids[:rows], new[:rows, :steps]], dim=1)
        graph.wipe()  # for the next call, off its path to the first token: the device zeroes it meanwhile
        return output


def _last_needed_step(new: torch.Tensor, eos: torch.Tensor) -> int:
    """The step at which the last row produced its first end-of-sequence token."""
    is_eos = torch.isin(new, eos)
    return int(is_eos.int().argmax(-1).max())  # called once every row has one
