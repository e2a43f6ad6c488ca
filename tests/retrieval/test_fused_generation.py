"""Fused answers from the default model equal a cache-free greedy loop over full forward passes.

Not answer quality: parity. ``generate`` decodes with a KV cache that holds the soft prompt, and its
cache handling has changed under us between transformers 5.x releases (the cache's keyword renamed in
5.24, an all-ones mask dropped from 5.18); each time fused answers went wrong while text answers did not.
"""

from __future__ import annotations

import torch

from ragcompress.modeling import compress
from ragcompress.retrieval.generation import fuse, generate_outputs, prompt_rows

from .conftest import DOCUMENTS

QUESTION = "Who founded the town of Pelville?"
NEW_TOKENS = 5


@torch.inference_mode()
def _greedy_full_forward(model, tokenizer, prompt: list[int], softprompt: torch.Tensor) -> list[int]:
    ids = torch.tensor([prompt])
    new: list[int] = []
    for _ in range(NEW_TOKENS):
        token = int(model(ids, softprompt=softprompt).logits[0, -1].argmax())
        new.append(token)
        if token == tokenizer.eos_token_id:
            break
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return new


def test_fused_generate_equals_greedy_full_forward_loop(default_models):
    compressor, _ = default_models
    model, tokenizer = compressor.model, compressor.tokenizer
    passages = [DOCUMENTS["zarnok"], DOCUMENTS["pelville"]]
    vectors = compress(model, tokenizer, passages)
    [out] = generate_outputs(
        model, tokenizer, [QUESTION], mode="fused", passage_vectors=[vectors], max_new_tokens=NEW_TOKENS
    )
    [prompt] = prompt_rows(tokenizer, [QUESTION], None, "fused")
    expected = _greedy_full_forward(model, tokenizer, prompt, fuse(vectors)[None])
    assert out.softprompt_slots == 2 * model.config.summary_length
    assert out.generated_tokens == len(expected)
    assert out.text == tokenizer.decode(expected, skip_special_tokens=True)
