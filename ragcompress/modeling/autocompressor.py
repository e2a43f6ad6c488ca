"""The AutoCompressor segment loop, shared by every architecture.

An AutoCompressor is a causal LM that reads a long input as a sequence of segments. Each segment runs as

    [soft prompt ; segment text ; κ summary tokens]

and the last κ hidden states become *summary vectors*: with ``accumulate_summary`` they are appended to
the soft prompt the next segment reads, otherwise they replace it. The summary tokens' input embeddings
are the κ rows of ``embed_summary``, the only parameter an AutoCompressor adds to its base model.

`AutoCompressorMixin` adds that loop to any Hugging Face ``*ForCausalLM`` whose decoder (``self.model``)
accepts ``inputs_embeds`` and ``position_ids``. It keeps no state between calls: positions and masks are
derived from the arguments of each call (and, when no mask is passed, from how many soft-prompt slots the
cache says it holds), so caches, beam search and batched padding work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers.modeling_outputs import CausalLMOutputWithPast

from ragcompress.modeling.base_model import (
    LOGIT_TRANSFORMS,
    NEW_PARAMETERS,
    check_logit_keys,
    is_loading_base_model,
)
from ragcompress.modeling.cache_api import (
    filled_slots,
    forward_cache_kwarg,
    one_cache,
    output_cache,
    output_cache_field,
    remember_softprompt_slots,
    remembered_softprompt_slots,
    takes_cache_position,
)
from ragcompress.modeling.generation import SoftPromptGenerationMixin
from ragcompress.modeling.positions import segment_position_ids, split_segments

DEFAULT_SUMMARY_LENGTH = 50
# "none": summary vectors are the last hidden states as they are (the official models).
# "affine": a per-dimension scale and shift (ragcompress extension) maps them to the statistics of input
# embeddings; small models' last hidden states are dominated by a few huge shared dimensions, which
# makes raw summary vectors nearly identical to one another once a decoder layer normalises them.
SUMMARY_READOUTS = ("none", "affine")


class SummaryReadout(nn.Module):
    """``h ↦ h · weight + bias``, per dimension; identity at construction."""

    def __init__(self, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden * self.weight.to(hidden.dtype) + self.bias.to(hidden.dtype)


@dataclass
class AutoCompressorOutput(CausalLMOutputWithPast):
    """`CausalLMOutputWithPast` plus the soft prompt after the last segment.

    ``softprompt`` is ``[batch, slots, hidden]``: the summary vectors produced by this call (concatenated
    onto the incoming soft prompt when ``accumulate_summary`` is on). ``logits`` cover text tokens only.
    """

    softprompt: torch.Tensor | None = None


def set_autocompressor_defaults(config, summary_length: int | None = None) -> None:
    """Give ``config`` the three AutoCompressor keys, keeping values it already has."""
    if summary_length is not None:
        config.summary_length = int(summary_length)
    elif getattr(config, "summary_length", None) is None:
        config.summary_length = DEFAULT_SUMMARY_LENGTH
    if getattr(config, "accumulate_summary", None) is None:
        config.accumulate_summary = True
    if getattr(config, "segment_gradient_checkpointing", None) is None:
        config.segment_gradient_checkpointing = False
    if getattr(config, "summary_readout", None) is None:
        config.summary_readout = "none"
    if config.summary_readout not in SUMMARY_READOUTS:
        raise ValueError(
            f"summary_readout={config.summary_readout!r} is unknown; use one of {SUMMARY_READOUTS}"
        )


class AutoCompressorMixin(SoftPromptGenerationMixin):
    """Adds summary tokens and the segment loop to a ``*ForCausalLM`` class (put it first in the bases)."""

    # How slots are numbered; see ragcompress.modeling.positions. OPT overrides this.
    position_style: str = "consecutive"

    def __init__(self, config, *args, **kwargs):
        set_autocompressor_defaults(config)
        check_logit_keys(config)
        super().__init__(config, *args, **kwargs)
        width = self.get_input_embeddings().embedding_dim
        self.embed_summary = nn.Embedding(config.summary_length, width)
        # as transformers initialises embeddings; from_pretrained then overwrites or re-initialises it
        nn.init.normal_(self.embed_summary.weight, std=getattr(config, "initializer_range", 0.02))
        if config.summary_readout == "affine":
            self.summary_readout = SummaryReadout(width)
        if is_loading_base_model():  # transformers' documented hook against missing-key reports
            ignored = set(getattr(self, "_keys_to_ignore_on_load_missing", None) or ())
            self._keys_to_ignore_on_load_missing = ignored | set(NEW_PARAMETERS)

    # ------------------------------------------------------------------ helpers
    @property
    def summary_length(self) -> int:
        return self.config.summary_length

    @property
    def embedding_width(self) -> int:
        return self.get_input_embeddings().embedding_dim

    def summary_embeddings(self, batch: int) -> torch.Tensor:
        # Call the module (not `.weight`) so wrappers such as peft's ModulesToSaveWrapper are honoured.
        index = torch.arange(self.summary_length, device=self.embed_summary.weight.device)
        return self.embed_summary(index).unsqueeze(0).expand(batch, -1, -1)

    @torch.no_grad()
    def init_summary_from_token(self, token_id: int | None = None) -> None:
        """Set every summary embedding to the input embedding of ``token_id`` (default: EOS).

        This is how a plain base model becomes an AutoCompressor; it must run *after* the base weights are
        loaded, otherwise it copies a random embedding.
        """
        if token_id is None:
            token_id = self.config.eos_token_id
            if isinstance(token_id, (list, tuple)):
                token_id = token_id[0] if token_id else None
        if token_id is None:
            raise ValueError("the config has no eos_token_id; pass token_id= to init_summary_from_token")
        embed = self.get_input_embeddings()
        ids = torch.tensor([token_id], device=embed.weight.device)
        row = embed(ids)[0]
        self.embed_summary.weight.copy_(
            row.to(self.embed_summary.weight.dtype).expand_as(self.embed_summary.weight)
        )

    @torch.no_grad()
    def init_summary_readout(self, sample_ids: torch.Tensor, segment_length: int = 512) -> None:
        """Initialise the affine readout so summary vectors are standardised per dimension.

        Raw summary vectors of ``sample_ids`` (domain text, ``[batch, tokens]``, compressed in segments of
        ``segment_length``) are centred and scaled to the root-mean-square of the token-embedding table:
        what all summary vectors share is removed, what tells them apart is kept at embedding scale.
        """
        if self.config.summary_readout != "affine":
            raise ValueError("init_summary_readout needs config.summary_readout='affine'")
        readout = self.summary_readout
        readout.weight.fill_(1.0)
        readout.bias.zero_()
        was_training = self.training
        self.eval()
        ids = sample_ids.to(self.embed_summary.weight.device)
        raw = self(
            input_ids=ids, segment_lengths=segment_length, output_softprompt=True, logits_to_keep=1
        ).softprompt
        self.train(was_training)
        flat = raw.reshape(-1, raw.shape[-1]).float()
        mean, std = flat.mean(0), flat.std(0).clamp(min=1e-3)
        target = self.get_input_embeddings().weight.float().pow(2).mean().sqrt()
        readout.weight.copy_((target / std).to(readout.weight.dtype))
        readout.bias.copy_((-mean * target / std).to(readout.bias.dtype))

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The base model's head: ``lm_head`` and the transforms its config turns on (LOGIT_TRANSFORMS)."""
        logits = self.lm_head(hidden)
        for key, transform in LOGIT_TRANSFORMS.items():
            value = getattr(self.config, key, None)
            if value is not None:
                logits = transform(logits, value)
        return logits

    def _check_softprompt(self, softprompt: torch.Tensor | None, batch: int, ref: torch.Tensor):
        if softprompt is None:
            return None
        if softprompt.dim() == 2:
            softprompt = softprompt.unsqueeze(0)
        if softprompt.dim() != 3:
            raise ValueError(
                f"softprompt must be [batch, slots, {self.embedding_width}], got {tuple(softprompt.shape)}"
            )
        if softprompt.shape[-1] != self.embedding_width:
            raise ValueError(
                f"softprompt has width {softprompt.shape[-1]} but this model's embeddings have width "
                f"{self.embedding_width}; pass summary vectors made by this model"
            )
        if softprompt.shape[0] != batch:
            if softprompt.shape[0] != 1:
                raise ValueError(f"softprompt has batch size {softprompt.shape[0]} but the input has {batch}")
            softprompt = softprompt.expand(batch, -1, -1)
        if softprompt.shape[1] == 0:
            return None
        return softprompt.to(device=ref.device, dtype=ref.dtype)

    def _text_mask(
        self, attention_mask, batch: int, new_tokens: int, past_slots: int, cached_softprompt: int, device
    ) -> tuple[torch.Tensor, int]:
        """The text-only mask and how many cached slots hold a soft prompt.

        With a cache, ``attention_mask`` covers every text token seen so far plus the new ones (the
        convention of ``generate``); the cached slots it does not cover are the soft prompt. Without a
        mask (no padding) that count is ``cached_softprompt``, as recorded on the cache.
        """
        if attention_mask is None:
            text = past_slots - cached_softprompt + new_tokens
            return torch.ones(batch, text, dtype=torch.long, device=device), cached_softprompt
        if attention_mask.dim() != 2 or attention_mask.shape[0] != batch:
            raise ValueError(
                f"attention_mask must be [batch, tokens] = [{batch}, ≥{new_tokens}], got {tuple(attention_mask.shape)}"
            )
        cached_softprompt = past_slots + new_tokens - attention_mask.shape[1]
        if not 0 <= cached_softprompt <= past_slots:
            raise ValueError(
                f"attention_mask has {attention_mask.shape[1]} columns but the input has {new_tokens} new tokens "
                f"and the cache {past_slots} slots; pass a mask over all text tokens seen so far"
            )
        return attention_mask.to(device).long(), cached_softprompt

    def _before_training_forward(self) -> None:
        """Hook for architectures that must protect a parameter in training (OPT's position row 1)."""

    def _run_decoder(
        self, inputs_embeds, attention_mask, position_ids, cache, use_cache, cache_start=0, **kwargs
    ):
        # the decoder gets the cache under the name it declares (see cache_api: renamed in 5.24)
        kwargs[forward_cache_kwarg(type(self.model))] = cache
        if cache is not None and takes_cache_position(type(self.model)):
            # transformers < 5.4: where this call's slots go, or the decoder asks the cache (see filled_slots)
            kwargs["cache_position"] = torch.arange(
                cache_start, cache_start + inputs_embeds.shape[1], device=inputs_embeds.device
            )

        def run(embeds, mask, positions):
            out = self.model(
                inputs_embeds=embeds,
                attention_mask=mask,
                position_ids=positions,
                use_cache=use_cache,
                **kwargs,
            )
            return out.last_hidden_state, output_cache(out)

        if self.config.segment_gradient_checkpointing and self.training and torch.is_grad_enabled():
            # Keep only each segment's inputs (including the incoming soft prompt) and recompute the
            # segment in backward: memory grows with the number of segments, not with their length.
            hidden = checkpoint(
                lambda e, m, p: run(e, m, p)[0],
                inputs_embeds,
                attention_mask,
                position_ids,
                use_reentrant=False,
            )
            return hidden, None
        return run(inputs_embeds, attention_mask, position_ids)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        segment_lengths: int | list[int] | None = None,
        softprompt: torch.Tensor | None = None,
        output_softprompt: bool = False,
        cache=None,
        past_key_values=None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        position_ids: torch.LongTensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AutoCompressorOutput:
        """Run the segments of ``input_ids`` (or ``inputs_embeds``) one after another.

        Args:
            input_ids / inputs_embeds: ``[batch, tokens]`` / ``[batch, tokens, width]`` text.
            attention_mask: ``[batch, tokens]`` over text (1 real, 0 padding); padding may sit anywhere in
                a segment, for instance at the end of the last one. With a cache it covers all text seen.
            labels: ``[batch, tokens]``; -100 is ignored. The loss is over text tokens only.
            segment_lengths: int (cut into pieces of that size) or list summing to ``tokens``; default one
                segment.
            softprompt: ``[batch, slots, width]`` summary vectors to read before the first segment.
            output_softprompt: also append summary tokens to the last segment (to compress it).
            cache / use_cache: HF cache for the last segment (generation); ``past_key_values`` is the
                same argument under the name transformers < 5.24 uses, accepted on every version.
            logits_to_keep: keep only the logits of the last n text tokens (0: all).
        """
        if position_ids is not None:
            raise ValueError(
                "AutoCompressors derive position_ids from the segment layout; do not pass position_ids"
            )
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if self.training:
            self._before_training_forward()
        embeds = self.get_input_embeddings()(input_ids) if inputs_embeds is None else inputs_embeds
        batch, total = embeds.shape[:2]

        cache = one_cache(cache, past_key_values)
        # generate in transformers < 5.4 passes cache_position counted over text tokens only; the decoder
        # must number cache slots (soft prompt included): _run_decoder gives it those.
        past_slots = filled_slots(cache, kwargs.pop("cache_position", None))
        unpadded = attention_mask is None and past_slots == 0
        recorded = remembered_softprompt_slots(cache) if past_slots else 0
        text_mask, cached_softprompt = self._text_mask(
            attention_mask, batch, total, past_slots, recorded, embeds.device
        )
        past_text = past_slots - cached_softprompt
        softprompt = self._check_softprompt(softprompt, batch, embeds)
        bounds = split_segments(segment_lengths, total)
        if past_slots:
            if softprompt is not None:
                raise ValueError(
                    "the cache already holds the soft prompt; pass softprompt only on the first call"
                )
            if len(bounds) > 1:
                raise ValueError("with a cache the input continues one segment; pass one segment")
        if use_cache and output_softprompt:
            raise ValueError(
                "use_cache=True with output_softprompt=True would cache summary tokens; pick one"
            )

        kappa = self.summary_length
        text_hidden, new_cache = [], None
        for index, (start, end) in enumerate(bounds):
            last = index == len(bounds) - 1
            with_summary = not last or output_softprompt
            new_soft = 0 if softprompt is None else softprompt.shape[1]
            soft_slots = new_soft + (cached_softprompt if index == 0 else 0)
            seen_text = text_mask[:, (0 if index == 0 else past_text + start) : past_text + end]
            pieces = [embeds[:, start:end]]
            if softprompt is not None:
                pieces.insert(0, softprompt)
            if with_summary:
                pieces.append(self.summary_embeddings(batch).to(embeds.dtype))
            segment_embeds = torch.cat(pieces, dim=1)
            positions = segment_position_ids(
                self.position_style,
                seen_text,
                end - start,
                soft_slots,
                new_soft,
                kappa if with_summary else 0,
            )
            ones = seen_text.new_ones
            mask = torch.cat(
                [ones(batch, soft_slots), seen_text, ones(batch, kappa if with_summary else 0)], dim=1
            )
            if unpadded and self.position_style == "consecutive":
                # No padding and no cache: the slots are numbered 0..n-1 and attention is plain causal,
                # which is exactly the decoder's default. Passing neither lets SDPA take its is_causal
                # kernel without inspecting a mask (no host-device sync per segment).
                mask = positions = None
            hidden, segment_cache = self._run_decoder(
                segment_embeds,
                mask,
                positions,
                cache if last else None,
                use_cache if last else False,
                past_slots,
                **kwargs,
            )
            text_hidden.append(hidden[:, new_soft : new_soft + end - start])
            if last:
                new_cache = segment_cache
                if new_cache is not None and not past_slots:  # what a mask-less next call needs to know
                    remember_softprompt_slots(new_cache, soft_slots)
            if with_summary:
                summary = hidden[:, hidden.shape[1] - kappa :]
                if self.config.summary_readout == "affine":
                    summary = self.summary_readout(summary)
                if self.config.accumulate_summary and softprompt is not None:
                    softprompt = torch.cat([softprompt, summary], dim=1)
                else:
                    softprompt = summary

        hidden = torch.cat(text_hidden, dim=1)
        if logits_to_keep:  # plain strides: a strided slice makes CPU matmuls copy the head's weight per row
            hidden = hidden[:, -logits_to_keep:].clone(memory_format=torch.contiguous_format)
        logits = self._logits(hidden)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size)
        return AutoCompressorOutput(
            loss=loss,
            logits=logits,
            softprompt=softprompt,
            **{output_cache_field(AutoCompressorOutput): new_cache},
        )
