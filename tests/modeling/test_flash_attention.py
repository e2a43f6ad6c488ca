"""flash-attention 2 through the standard `attn_implementation`: where flash-attn and a CUDA GPU are present,
a tiny AutoCompressor reads and writes the same summary vectors and logits with it as with SDPA (to bf16
tolerance). Everywhere else it is skipped, and the reason says which of the two is missing."""

import importlib.util

import pytest
import torch
from tiny import random_ids, tiny_model

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="flash-attention 2 needs a CUDA GPU"),
    pytest.mark.skipif(
        importlib.util.find_spec("flash_attn") is None,
        reason="flash-attn is not installed (pip install 'ragcompress[gpu]')",
    ),
]


def _run(attn: str, ids: torch.Tensor):
    model = tiny_model("llama", summary_length=4, attn=attn).to("cuda", torch.bfloat16)
    with torch.no_grad():
        return model(ids, segment_lengths=[24, 24], output_softprompt=True)


def test_flash_attention_2_matches_sdpa():
    ids = random_ids(2, 48).cuda()
    flash, sdpa = _run("flash_attention_2", ids), _run("sdpa", ids)
    torch.testing.assert_close(flash.softprompt.float(), sdpa.softprompt.float(), atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(flash.logits.float(), sdpa.logits.float(), atol=3e-2, rtol=3e-2)
