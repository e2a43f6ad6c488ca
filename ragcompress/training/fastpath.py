"""The fast training path: the segment loop with static shapes, no host-device syncs, a compiled decoder.

A small model on a large GPU is launch-bound in the AutoCompressor step (benchmarks/README.md, "Training
throughput"): four decoder calls per step, each of a new shape when segments are cut at random, each
with a host-device sync in transformers' packed-sequence check. This path computes exactly what
`AutoCompressorMixin.forward` computes for a training substep (no cache, no padding mask, consecutive
positions), differently laid out:

* **Trailing padding to buckets.** A segment's row is ``[soft prompt ; text ; summary ; padding]`` with
  the text length rounded up to a multiple of ``bucket``. The padding sits after every real slot, so
  under causal attention no real slot sees it and positions of real slots are unchanged; its hidden
  states are sliced away before the vocabulary head, so it never reaches the loss. The decoder therefore
  sees a handful of row lengths whatever the random breakpoints are, and a compiled decoder keeps its
  graphs instead of recompiling per segmenting.
* **No mask to inspect.** The decoder runs under an attention implementation registered here that is
  transformers' own SDPA function under a name the mask factories do not know: ``create_causal_mask``
  then returns ``None`` without looking at anything (no packed-sequence ``.all()``, no padding check)
  and SDPA runs its ``is_causal`` kernel (flash on GPUs). The name is set only around the fast decoder
  calls, so validation, QA and generation keep the configured implementation and its padding masks.
* **Compiled decoder.** ``torch.compile`` with ``dynamic=False`` of every decoder layer (regional
  compilation: all layers share one graph per row length, so compiling costs one layer, not the whole
  stack) or of the whole decoder. peft's LoRA layers sit inside the compiled layers.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch.utils.checkpoint import checkpoint
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from ragcompress.modeling import unwrap
from ragcompress.modeling.autocompressor import AutoCompressorOutput, split_segments
from ragcompress.training.config import COMPILE_MODES, COMPILE_SCOPES, GRAPH_MODES  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

# Not a key of transformers' mask-factory mapping, on purpose: see the module docstring.
CAUSAL_SDPA = "ragcompress_causal_sdpa"
AttentionInterface.register(CAUSAL_SDPA, sdpa_attention_forward)

# rope variants whose frequencies do not depend on the largest position in the batch (padding slots
# take positions after the real ones; a "dynamic" rope would rescale every slot because of them)
STATIC_ROPE = ("default", "linear", "llama3", "yarn", "longrope", None)


def bucket_length(length: int, bucket: int, cap: int | None = None) -> int:
    """``length`` rounded up to a multiple of ``bucket`` (0: no rounding), never beyond ``cap``."""
    if length < 1:
        raise ValueError(f"a segment needs ≥ 1 token, got {length}")
    padded = -(-length // bucket) * bucket if bucket > 0 else length
    return max(length, min(padded, cap)) if cap is not None else padded


def unsupported_reason(core) -> str | None:
    """Why the fast path cannot reproduce ``core``'s segment loop, or None when it can."""
    config = core.config
    if core.position_style != "consecutive":
        return f"position style {core.position_style!r} numbers text per segment (only consecutive is padded)"
    attn = config._attn_implementation
    if attn != "sdpa":
        return f"attn_implementation={attn!r} (the fast path runs SDPA's causal kernel; use sdpa)"
    layer_types = getattr(config, "layer_types", None) or ()
    if getattr(config, "use_sliding_window", True) and getattr(config, "sliding_window", None):
        return "the model uses sliding-window attention, which needs a mask"
    if any(kind != "full_attention" for kind in layer_types):
        return f"layer types {sorted(set(layer_types))}: only full causal attention runs without a mask"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if isinstance(rope, dict) and rope.get("rope_type", rope.get("type")) not in STATIC_ROPE:
        return (
            f"rope type {rope.get('rope_type')!r} depends on the longest position (padding would change it)"
        )
    return None


@contextlib.contextmanager
def _causal_sdpa(config):
    """Run the decoder under `CAUSAL_SDPA` for the duration of one call, then restore the config."""
    before = config._attn_implementation
    config._attn_implementation = CAUSAL_SDPA
    try:
        yield
    finally:
        config._attn_implementation = before


class FastSegmentLoop:
    """``model(input_ids, labels, segment_lengths, softprompt, output_softprompt)`` for training substeps.

    Returns an `AutoCompressorOutput` with the same loss, logits and soft prompt as the model's own
    forward on the same arguments (to floating-point tolerance). ``shapes`` records every decoder row
    length it has run, so callers and tests can see that they repeat.
    """

    def __init__(self, model, bucket: int = 64):
        self.core = unwrap(model)
        reason = unsupported_reason(self.core)
        if reason:
            raise ValueError(f"fast path: {reason}")
        self.bucket = bucket
        self.max_positions = getattr(self.core.config, "max_position_embeddings", None)
        self.shapes: set[int] = set()

    def row_length(self, text: int, other_slots: int) -> int:
        """Slots of a decoder row: soft prompt and summary plus the text rounded up to the bucket."""
        cap = None if self.max_positions is None else self.max_positions - other_slots
        return other_slots + bucket_length(text, self.bucket, cap)

    def _decoder(self, row: torch.Tensor) -> torch.Tensor:
        core = self.core

        def run(embeds):
            return core.model(inputs_embeds=embeds, use_cache=False).last_hidden_state

        with _causal_sdpa(core.config):
            if core.config.segment_gradient_checkpointing and core.training and torch.is_grad_enabled():
                # as in the model's own loop: keep each segment's inputs, recompute it in backward
                return checkpoint(run, row, use_reentrant=False)
            return run(row)

    def __call__(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        segment_lengths=None,
        softprompt: torch.Tensor | None = None,
        output_softprompt: bool = False,
        **unused,
    ) -> AutoCompressorOutput:
        core = self.core
        if core.training:
            core._before_training_forward()
        embeds = core.get_input_embeddings()(input_ids)
        batch, total = embeds.shape[:2]
        softprompt = core._check_softprompt(softprompt, batch, embeds)
        bounds = split_segments(segment_lengths, total)
        kappa = core.summary_length
        text_hidden = []
        for index, (start, end) in enumerate(bounds):
            with_summary = index < len(bounds) - 1 or output_softprompt
            soft = 0 if softprompt is None else softprompt.shape[1]
            text = end - start
            summary_slots = kappa if with_summary else 0
            width = self.row_length(text, soft + summary_slots)
            pieces = [embeds[:, start:end]]
            if softprompt is not None:
                pieces.insert(0, softprompt)
            if with_summary:
                pieces.append(core.summary_embeddings(batch).to(embeds.dtype))
            if width > soft + text + summary_slots:
                pieces.append(embeds.new_zeros(batch, width - soft - text - summary_slots, embeds.shape[-1]))
            self.shapes.add(width)
            hidden = self._decoder(torch.cat(pieces, dim=1))
            text_hidden.append(hidden[:, soft : soft + text])
            if with_summary:
                summary = hidden[:, soft + text : soft + text + kappa]
                if core.config.summary_readout == "affine":
                    summary = core.summary_readout(summary)
                if core.config.accumulate_summary and softprompt is not None:
                    softprompt = torch.cat([softprompt, summary], dim=1)
                else:
                    softprompt = summary
        logits = core._logits(torch.cat(text_hidden, dim=1))
        loss = None
        if labels is not None:
            loss = core.loss_function(logits=logits, labels=labels, vocab_size=core.config.vocab_size)
        return AutoCompressorOutput(loss=loss, logits=logits, softprompt=softprompt)


def compile_decoder(core, mode: str = "default", scope: str = "layers", backend: str = "inductor", **options):
    """Compile ``core``'s decoder in place (its state dict keys do not change), ``dynamic=False``."""
    if scope not in COMPILE_SCOPES:
        raise ValueError(f"compile scope {scope!r} is unknown; use one of {COMPILE_SCOPES}")
    # one graph per row length (and grad mode) per region; the bucketed loop has a few dozen at most
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    kwargs = dict(dynamic=False, backend=backend, **options)
    if backend == "inductor" and mode != "default":
        kwargs["mode"] = mode
    if scope == "layers":
        for layer in core.model.layers:
            layer.compile(**kwargs)
    else:
        core.model.compile(**kwargs)


def longest_segment(cfg) -> int:
    """The longest segment random breakpoints can cut from a substep (``segment_bucket`` at least this
    pads every segment to one length, so every step runs the same sequence of decoder shapes)."""
    count = cfg.segments_per_substep
    if not cfg.randomize_segments or count == 1:
        return -(-cfg.substep_length // count)
    return cfg.substep_length - (count - 1) * cfg.shortest_segment


def uncompiled():
    """Run compiled modules eagerly inside: calls of shapes the training step never repeats."""
    return torch.compiler.set_stance("force_eager")


def resolve(cfg, device: torch.device) -> tuple[bool, bool]:
    """(fast path wanted, compile wanted) from the config: both default to on for CUDA, off elsewhere."""
    on_gpu = device.type == "cuda"
    fast = cfg.fast_path if cfg.fast_path is not None else on_gpu
    compiled = cfg.compile if cfg.compile is not None else on_gpu
    return fast, fast and compiled


def enable(model, cfg, device: torch.device, say=log.info) -> FastSegmentLoop | None:
    """The fast loop for ``model`` as ``cfg`` asks (compiling its decoder in place), or None.

    When the fast path is wanted but the model cannot take it, one line says why and training runs the
    model's own loop. Call it after any copy of the model is made (a distillation teacher): compiling
    changes the modules in place.
    """
    fast, compiled = resolve(cfg, device)
    if not fast:
        return None
    core = unwrap(model)
    reason = unsupported_reason(core)
    if reason:
        say(f"fast training path off: {reason}; running the model's own segment loop")
        return None
    loop = FastSegmentLoop(model, cfg.segment_bucket)
    if compiled:
        compile_decoder(core, cfg.compile_mode, cfg.compile_scope)
        longest = longest_segment(cfg)
        if cfg.compile_mode in GRAPH_MODES and cfg.randomize_segments and cfg.segment_bucket < longest:
            say(
                f"compile_mode={cfg.compile_mode} with random breakpoints: each step's own sequence of "
                "segment shapes makes torch record CUDA graphs again step after step (13-44 s a step on the "
                f"stage-1 recipe, benchmarks/README.md); use segment_bucket={longest} (every segment padded "
                "to the longest: one sequence of shapes), randomize_segments=false or compile_mode=default"
            )
    say(
        f"fast training path: segments padded to multiples of {cfg.segment_bucket} tokens, causal SDPA "
        f"without masks, decoder {'compiled (' + cfg.compile_scope + ', ' + cfg.compile_mode + ')' if compiled else 'not compiled'}"
    )
    return loop
