"""Position ids for the three kinds of slot in an AutoCompressor segment, and where segments start and end.

Every segment the model sees is laid out as ``[soft prompt ; text ; summary tokens]``. How those slots
are numbered must match what the official checkpoints were trained with, so it is a *style* chosen by
the model class, computed here from masks alone (no state kept between calls):

* ``"consecutive"`` (Llama and every rotary-position model): positions run 0, 1, 2, ... over the whole
  ``[soft prompt ; text ; summary]`` row, skipping padding.
* ``"opt"`` (OPT's learned absolute positions): soft-prompt and summary slots all take position -1,
  which OPT's +2 offset maps to row 1 of the learned table (the padding row); text positions count
  from 0 at the start of each segment, so a text token's position never depends on the soft prompt.
"""

from __future__ import annotations

import torch

POSITION_STYLES = ("consecutive", "opt")


def segment_position_ids(
    style: str,
    text_mask: torch.Tensor,
    num_new_text: int,
    softprompt_slots: int,
    new_softprompt_slots: int,
    summary_slots: int,
) -> torch.Tensor:
    """Position ids for the slots a forward call adds: ``[new soft prompt ; new text ; summary]``.

    Args:
        style: ``"consecutive"`` or ``"opt"`` (see the module docstring).
        text_mask: ``[batch, text_seen]`` 1 for real text tokens and 0 for padding, covering every text
            token of this segment seen so far (cached ones included), the new ones last.
        num_new_text: how many of the last columns of ``text_mask`` this call feeds.
        softprompt_slots: soft-prompt slots in front of the text, cached or new.
        new_softprompt_slots: how many of those this call feeds (0 when they already sit in the cache).
        summary_slots: summary tokens appended after the text in this call.
    """
    batch = text_mask.shape[0]
    device = text_mask.device
    mask = text_mask.long()
    # index of each text token among the real text tokens of its segment (-1 before the first one)
    text_index = mask.cumsum(-1)[:, mask.shape[1] - num_new_text :] - 1
    new_mask = mask[:, mask.shape[1] - num_new_text :]
    real_text = mask.sum(-1, keepdim=True)

    if style == "consecutive":
        soft = torch.arange(softprompt_slots - new_softprompt_slots, softprompt_slots, device=device)
        soft = soft.expand(batch, -1)
        # padding slots are masked out of attention; clamp only keeps their ids valid
        text = softprompt_slots + text_index.clamp(min=0)
        summary = softprompt_slots + real_text + torch.arange(summary_slots, device=device)
    elif style == "opt":
        soft = torch.full((batch, new_softprompt_slots), -1, device=device, dtype=torch.long)
        text = torch.where(new_mask.bool(), text_index, torch.full_like(text_index, -1))
        summary = torch.full((batch, summary_slots), -1, device=device, dtype=torch.long)
    else:
        raise ValueError(f"position style {style!r} is unknown; use one of {POSITION_STYLES}")
    return torch.cat([soft, text, summary], dim=1).long()


def split_segments(
    segment_lengths: int | list[int] | tuple[int, ...] | None, total: int
) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of each segment; an int cuts ``total`` into pieces of that size."""
    if total <= 0:
        raise ValueError("the input is empty: pass at least one token")
    if segment_lengths is None:
        lengths = [total]
    elif isinstance(segment_lengths, int):
        if segment_lengths <= 0:
            raise ValueError(f"segment_lengths={segment_lengths} must be a positive number of tokens")
        lengths = [segment_lengths] * (total // segment_lengths)
        if total % segment_lengths:
            lengths.append(total % segment_lengths)
    else:
        lengths = [int(n) for n in segment_lengths]
        if any(n <= 0 for n in lengths):
            raise ValueError(f"segment_lengths={lengths} has a segment of no tokens; every segment needs ≥ 1")
        if sum(lengths) != total:
            raise ValueError(
                f"segment_lengths={lengths} sum to {sum(lengths)} but the input has {total} tokens; "
                "pass lengths that add up to the input length"
            )
    bounds, start = [], 0
    for n in lengths:
        bounds.append((start, start + n))
        start += n
    return bounds
