"""generate with a static cache (what torch.compile and CUDA graphs need) equals the dynamic cache.

Regression: the static cache was sized for prompt + new tokens without the soft prompt's slots (an
IndexError from index_copy_ on CPU, a device-side assert that kills the CUDA context on GPU), and the
AutoCompressor was handed the 4-D mask generate builds for static caches instead of its 2-D text mask.
"""

import pytest
import torch
from tiny import random_ids, tiny_model
from transformers import StaticCache

from ragcompress.modeling.cache_api import output_cache

KW = dict(max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
KW |= dict(return_dict_in_generate=True, output_scores=True)


def _left_padded(lengths, seed=1):
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, ids.shape[1] - n :] = random_ids(1, n, seed=seed + row)[0]
        mask[row, ids.shape[1] - n :] = 1
    return ids, mask


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
@pytest.mark.parametrize("slots", [6, 0])
@pytest.mark.parametrize("lengths", [[5], [4, 9]], ids=["one", "padded-batch"])
def test_static_cache_generation_equals_dynamic(arch, slots, lengths):
    model = tiny_model(arch, summary_length=3)
    ids, mask = _left_padded(lengths)
    soft = torch.randn(len(lengths), slots, 32) if slots else None
    dynamic = model.generate(ids, attention_mask=mask, softprompt=soft, **KW)
    static = model.generate(ids, attention_mask=mask, softprompt=soft, cache_implementation="static", **KW)
    assert static.sequences.tolist() == dynamic.sequences.tolist()
    cache = output_cache(static)
    assert isinstance(cache, StaticCache)  # the static path really ran
    # sized for every slot it is written: soft prompt, prompt and all but the last new token
    assert cache.layers[0].max_cache_len >= slots + ids.shape[1] + KW["max_new_tokens"] - 1
    # greedy scores agree to fp32 tolerance step by step, not only the argmax
    for a, b in zip(static.scores, dynamic.scores):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
