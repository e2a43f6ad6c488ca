"""REPLUG: one pass per passage, next-token distributions ensembled by retrieval score.

Each of the k passages goes as plain text into its own prompt (one passage per prompt, as REPLUG does).
The k prompts run as one left-padded batch with a KV cache each; at every step the k next-token
distributions are mixed with weights softmax(retrieval scores / score_temperature), one token is picked
from the mixture (greedy by default) and fed to all k rows, so they stay in step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import DynamicCache

from ragcompress.compressor import Compressor
from ragcompress.modeling.cache_api import output_cache
from ragcompress.prompting import join_passages, question_prompt_ids
from ragcompress.retrieval.generation import GenerationOutput, left_pad

# HF generate arguments that mean the same thing here; anything else (beams, top-p, ...) is refused
# rather than silently ignored.
SUPPORTED_KWARGS = {"do_sample", "temperature", "top_k", "eos_token_id", "pad_token_id", "streamer"}


def ensemble_weights(scores: Sequence[float], score_temperature: float = 1.0) -> torch.Tensor:
    """REPLUG's passage weights: softmax over retrieval scores."""
    return torch.softmax(torch.tensor(list(scores), dtype=torch.float32) / score_temperature, dim=0)


def _pick(mixture: torch.Tensor, do_sample: bool, top_k: int | None) -> int:
    if not do_sample:
        return int(mixture.argmax())
    if top_k:
        values, indices = mixture.topk(min(top_k, mixture.numel()))
        return int(indices[torch.multinomial(values / values.sum(), 1)])
    return int(torch.multinomial(mixture / mixture.sum(), 1))


@torch.inference_mode()
def replug_generate(
    compressor: Compressor,
    question: str,
    passages: Sequence[str],
    scores: Sequence[float],
    max_new_tokens: int = 32,
    score_temperature: float = 1.0,
    **generate_kwargs,
) -> GenerationOutput:
    """Answer ``question`` from the mixture of one pass per passage (passages best first)."""
    unsupported = sorted(set(generate_kwargs) - SUPPORTED_KWARGS)
    if unsupported:
        raise ValueError(
            f"mode 'replug' does not support {', '.join(unsupported)}; it takes {sorted(SUPPORTED_KWARGS)}"
        )
    if not passages:
        raise ValueError("mode 'replug' needs at least one passage")
    model, tokenizer, device = compressor.model, compressor.tokenizer, compressor.device
    eos = generate_kwargs.get("eos_token_id", tokenizer.eos_token_id)
    eos = set() if eos is None else {eos} if isinstance(eos, int) else set(eos)
    pad_id = generate_kwargs.get("pad_token_id")
    if pad_id is None:
        pad_id = compressor.pad_id
    do_sample = bool(generate_kwargs.get("do_sample", False))
    temperature = float(generate_kwargs.get("temperature") or 1.0) if do_sample else 1.0
    streamer = generate_kwargs.get("streamer")

    rows = [question_prompt_ids(tokenizer, question, join_passages([p])) for p in passages]
    weights = ensemble_weights(scores, score_temperature).to(device)
    ids, mask = left_pad(rows, pad_id, device)
    if streamer is not None:
        streamer.put(torch.tensor(rows[0]))  # like generate: the prompt first (skipped by skip_prompt)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        cache=DynamicCache(config=compressor.core.config),
        use_cache=True,
        logits_to_keep=1,
    )
    generated: list[int] = []
    try:
        while len(generated) < max_new_tokens:
            probs = torch.softmax(out.logits[:, -1].float() / temperature, dim=-1)  # [k, vocab]
            mixture = (weights[:, None] * probs).sum(0)
            token = _pick(mixture, do_sample, generate_kwargs.get("top_k"))
            generated.append(token)
            if streamer is not None:
                streamer.put(torch.tensor([token]))
            if token in eos or len(generated) == max_new_tokens:
                break
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            out = model(
                input_ids=torch.full((len(rows), 1), token, dtype=torch.long, device=device),
                attention_mask=mask,
                cache=output_cache(out),
                use_cache=True,
            )
    finally:
        if streamer is not None:
            streamer.end()
    text = tokenizer.decode(generated, skip_special_tokens=True)
    return GenerationOutput(text, sum(len(r) for r in rows), 0, len(generated))
