"""Generation with a soft prompt: cached == full, batched left padding, sampling, beam search."""

import warnings

import pytest
import torch
from tiny import random_ids, tiny_model
from transformers import DynamicCache

from ragcompress.modeling.cache_api import output_cache


@pytest.mark.parametrize("arch", ["llama", "opt", "qwen3", "gemma3"])
def test_cached_decoding_equals_full_forward(arch):
    model = tiny_model(arch, summary_length=3)
    ids = random_ids(2, 11)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # left padding of row 0
    soft = torch.randn(2, 6, 32)
    full = model(ids, attention_mask=mask, softprompt=soft).logits
    cache = DynamicCache(config=model.config)
    prefill = model(
        ids[:, :7], attention_mask=mask[:, :7], softprompt=soft, past_key_values=cache, use_cache=True
    )
    steps = [prefill.logits]
    for t in range(7, 11):
        out = model(
            ids[:, t : t + 1],
            attention_mask=mask[:, : t + 1],
            past_key_values=prefill.past_key_values,
            use_cache=True,
        )
        steps.append(out.logits)
    cached = torch.cat(steps, 1)
    real = mask.bool()
    torch.testing.assert_close(cached[real], full[real], atol=1e-4, rtol=1e-4)


# OPT numbers text positions from 0 after the soft prompt, so a decoding step that mistakes the cached
# soft prompt for text gets wrong positions (what happened when generate began to drop an all-ones mask in
# transformers 5.18); Llama numbers all slots consecutively and would not notice.
@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_generate_greedy_matches_manual_full_forward_loop(arch):
    model = tiny_model(arch, summary_length=3)
    prompt = random_ids(1, 5)
    soft = torch.randn(1, 6, 32)
    out = model.generate(
        prompt, softprompt=soft, max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    seq = prompt
    for _ in range(6):
        nxt = model(seq, softprompt=soft).logits[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
    assert out.tolist() == seq.tolist()
    no_cache = model.generate(
        prompt,
        softprompt=soft,
        max_new_tokens=6,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
        use_cache=False,
    )
    assert no_cache.tolist() == seq.tolist()


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_batched_left_padded_generation_equals_single(arch):
    model = tiny_model(arch, summary_length=3)
    prompts = [random_ids(1, 4, seed=1)[0], random_ids(1, 9, seed=2)[0]]
    softs = torch.randn(2, 6, 32)
    width = max(len(p) for p in prompts)
    ids = torch.zeros(2, width, dtype=torch.long)
    mask = torch.zeros(2, width, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = p
        mask[i, width - len(p) :] = 1
    kw = dict(max_new_tokens=5, do_sample=False, eos_token_id=None, pad_token_id=0)
    batched = model.generate(ids, attention_mask=mask, softprompt=softs, **kw)[:, width:]
    for i, p in enumerate(prompts):
        single = model.generate(p[None], softprompt=softs[i : i + 1], **kw)[:, len(p) :]
        assert batched[i].tolist() == single[0].tolist()


def test_sampling_is_reproducible_with_a_seed():
    model = tiny_model("qwen2", summary_length=2)
    prompt = random_ids(2, 4)
    soft = torch.randn(2, 4, 32)
    kw = dict(softprompt=soft, max_new_tokens=8, do_sample=True, top_k=20, temperature=1.3, pad_token_id=0)
    torch.manual_seed(7)
    a = model.generate(prompt, **kw)
    torch.manual_seed(7)
    b = model.generate(prompt, **kw)
    assert a.tolist() == b.tolist() and a.shape == (2, 12)


def _manual_beam_search(model, prompt, soft, num_beams, steps):
    """Textbook beam search over full forwards (no cache): keep the best `num_beams` by summed log-prob."""
    beams = [(0.0, prompt[0].tolist())]
    for _ in range(steps):
        candidates = []
        for score, seq in beams:
            logp = torch.log_softmax(model(torch.tensor([seq]), softprompt=soft).logits[0, -1].float(), -1)
            top = torch.topk(logp, num_beams)
            candidates += [(score + v.item(), seq + [i.item()]) for v, i in zip(top.values, top.indices)]
        beams = sorted(candidates, key=lambda c: -c[0])[:num_beams]
    return beams[0][1]


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_beam_search_returns_the_manual_reference_best_sequence(arch):
    model = tiny_model(arch, summary_length=3, seed=3)
    prompt = random_ids(1, 5, seed=4)
    soft = torch.randn(1, 6, 32)
    out = model.generate(
        prompt,
        softprompt=soft,
        num_beams=3,
        max_new_tokens=4,
        do_sample=False,
        length_penalty=0.0,
        early_stopping=True,
        eos_token_id=None,
        pad_token_id=0,
    )
    assert out[0].tolist() == _manual_beam_search(model, prompt, soft, num_beams=3, steps=4)
    # batched beam search with two prompts gives each prompt's own best sequence
    prompts = torch.cat([prompt, random_ids(1, 5, seed=5)])
    softs = torch.cat([soft, torch.randn(1, 6, 32)])
    both = model.generate(
        prompts,
        softprompt=softs,
        num_beams=3,
        max_new_tokens=4,
        do_sample=False,
        length_penalty=0.0,
        eos_token_id=None,
        pad_token_id=0,
    )
    assert both[1].tolist() == _manual_beam_search(model, prompts[1:], softs[1:], num_beams=3, steps=4)


@pytest.mark.parametrize("name", ["cache", "past_key_values"])
def test_maskless_cached_steps_equal_full_forward_under_either_cache_name(name):
    """No mask at all (as generate passes for unpadded prompts): the cache knows its soft-prompt slots."""
    model = tiny_model("opt", summary_length=3)
    ids = random_ids(1, 8)
    soft = torch.randn(1, 5, 32)
    full = model(ids, softprompt=soft).logits
    out = model(ids[:, :5], softprompt=soft, use_cache=True, **{name: DynamicCache(config=model.config)})
    steps = [out.logits]
    for t in range(5, 8):
        out = model(ids[:, t : t + 1], use_cache=True, **{name: output_cache(out)})
        steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="not two different caches"):
        model(ids, cache=DynamicCache(config=model.config), past_key_values=DynamicCache(config=model.config))


def test_generation_uses_the_cache_name_of_the_installed_transformers():
    """No deprecation warning about the cache's name on any 5.x (renamed past_key_values -> cache in 5.24)."""
    model = tiny_model("llama", summary_length=2)
    prompt = random_ids(2, 4)
    mask = torch.ones_like(prompt)
    mask[0, 0] = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.generate(
            prompt, attention_mask=mask, softprompt=torch.randn(2, 4, 32), max_new_tokens=3, pad_token_id=0
        )
        model(prompt, use_cache=True)
    assert [str(w.message) for w in caught if "past_key_values" in str(w.message)] == []


@pytest.mark.parametrize("batch", [1, 3])
def test_the_logits_head_reads_the_kept_tokens_with_plain_strides(batch):
    # A strided slice of the last hidden states sends CPU matmuls in bf16 through a path that first
    # copies the head's whole weight once per row (SmolLM2's head: 106 ms instead of 4 ms at batch 1,
    # paid by every generate prefill); the forward hands the head a plain copy instead.
    model = tiny_model("llama", summary_length=3)
    seen = []
    model.lm_head.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    ids, soft = random_ids(batch, 9), torch.randn(batch, 6, 32)
    kept = model(ids, softprompt=soft, logits_to_keep=2).logits
    hidden = seen[0]
    assert hidden.shape == (batch, 2, 32) and hidden.stride() == (2 * 32, 32, 1)
    torch.testing.assert_close(kept, model(ids, softprompt=soft).logits[:, -2:])
