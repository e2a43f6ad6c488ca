"""The next token from a step's logits, picked as ``generate`` picks it (greedy, or sampling with
temperature, top-k and top-p), for decoding loops of our own (fast_decode.py)."""

from __future__ import annotations

import torch


def choose_next_token(logits, do_sample, temperature, top_k, top_p, generator) -> torch.Tensor:
    """Next token per row from ``[batch, vocab]`` float logits, as ``generate`` picks it."""
    if not do_sample:
        return logits.argmax(-1)
    if temperature is not None and temperature != 1.0:
        logits = logits / temperature
    if top_k:
        kth = torch.topk(logits, min(int(top_k), logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        ordered, index = torch.sort(logits, descending=True)
        cumulative = ordered.softmax(-1).cumsum(-1)
        drop = cumulative - ordered.softmax(-1) >= top_p  # keep the smallest set reaching top_p
        logits = logits.masked_fill(drop.scatter(-1, index, drop), float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
