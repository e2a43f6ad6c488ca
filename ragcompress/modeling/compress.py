"""`compress`: the one function that turns text chunks into summary vectors.

Training evaluation, indexing and retrieval all call it. It batches chunks of different lengths with
padding at the end of each chunk's last segment; positions and masks are computed per row by the model,
so a batched result equals the one-by-one result (to floating-point tolerance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ragcompress.modeling.models import unwrap

TokenChunks = Sequence[Sequence[int]] | Sequence[torch.Tensor]


def tokenize_chunks(tokenizer, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
    """Token ids of each text, with the tokenizer's own special-token policy."""
    return [tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"] for text in texts]


def _as_token_lists(tokenizer_or_ids, chunks) -> list[list[int]]:
    if chunks is None:  # compress(model, [[ids], ...])
        chunks, tokenizer = tokenizer_or_ids, None
    else:
        tokenizer = tokenizer_or_ids
    chunks = list(chunks)
    if chunks and isinstance(chunks[0], str):
        if tokenizer is None or not callable(tokenizer):
            raise TypeError(
                "compress got text chunks but no tokenizer; pass compress(model, tokenizer, texts)"
            )
        return tokenize_chunks(tokenizer, chunks)
    return [c.tolist() if isinstance(c, torch.Tensor) else list(c) for c in chunks]


def segment_plan(length: int, segment_length: int | None) -> list[int]:
    """Lengths of the compression steps a chunk of ``length`` tokens takes."""
    if segment_length is None or length <= segment_length:
        return [length]
    steps = math.ceil(length / segment_length)
    return [segment_length] * (steps - 1) + [length - segment_length * (steps - 1)]


@torch.inference_mode()
def compress(
    model,
    tokenizer_or_ids,
    chunks: Sequence[str] | TokenChunks | None = None,
    batch_size: int = 8,
    segment_length: int | None = None,
    softprompt: torch.Tensor | None = None,
    device: torch.device | str | None = None,
    to_cpu: bool = True,
    progress: Callable[[int], None] | None = None,
) -> list[torch.Tensor]:
    """Summary vectors of each chunk: a list of ``[κ·steps, width]`` tensors, in input order.

    Args:
        model: an AutoCompressor (peft-wrapped is fine).
        tokenizer_or_ids: the model's tokenizer (then ``chunks`` are strings), or the token-id chunks
            themselves (``compress(model, [[1, 2, 3], ...])``).
        chunks: texts, when a tokenizer is given.
        batch_size: chunks per forward pass. Chunks are sorted by length so padding stays small.
        segment_length: cut chunks longer than this into several compression steps (default: one step).
        softprompt: optional ``[slots, width]`` soft prompt every chunk reads first.
        device: where to run (default: the model's device).
        to_cpu: move results to CPU (default) or leave them on the model's device.
        progress: called with the number of chunks finished after each batch.
    """
    token_lists = _as_token_lists(tokenizer_or_ids, chunks)
    for i, ids in enumerate(token_lists):
        if len(ids) == 0:
            raise ValueError(f"chunk {i} has no tokens; drop empty chunks before compressing")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be ≥ 1")
    core = unwrap(model)
    device = torch.device(device) if device is not None else core.embed_summary.weight.device
    pad_id = core.config.pad_token_id if core.config.pad_token_id is not None else 0
    was_training = model.training
    model.eval()

    plans = [segment_plan(len(ids), segment_length) for ids in token_lists]
    # Same number of steps in a batch (so every row has the same soft-prompt width at every step),
    # longest first so that the batch needing the most memory fails first, not last.
    order = sorted(range(len(token_lists)), key=lambda i: (-len(plans[i]), -len(token_lists[i])))
    results: list[torch.Tensor | None] = [None] * len(token_lists)
    start = 0
    try:
        while start < len(order):
            steps = len(plans[order[start]])
            batch = [order[start]]
            while len(batch) < batch_size and start + len(batch) < len(order):
                candidate = order[start + len(batch)]
                if len(plans[candidate]) != steps:
                    break
                batch.append(candidate)
            start += len(batch)
            full = [plans[i][:-1] for i in batch][0]  # equal for all rows: full-size segments
            last_width = max(plans[i][-1] for i in batch)
            width = sum(full) + last_width
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                n = len(token_lists[i])
                ids[row, :n] = torch.tensor(token_lists[i])
                mask[row, :n] = 1
            out = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                segment_lengths=full + [last_width],
                softprompt=None if softprompt is None else softprompt.to(device),
                output_softprompt=True,
                use_cache=False,
                logits_to_keep=1,
            )
            vectors = out.softprompt
            if softprompt is not None and core.config.accumulate_summary:
                vectors = vectors[:, softprompt.shape[-2] :]
            for row, i in enumerate(batch):
                results[i] = vectors[row].cpu() if to_cpu else vectors[row]
            if progress is not None:
                progress(len(batch))
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]
