"""The modeling core leans on public transformers APIs only (issue 24's version-fragile spots).

* a base model's new parameters are declared expected-missing through the documented
  ``_keys_to_ignore_on_load_missing`` hook, not by silencing transformers' process-wide logging;
* the logits head is the base model's: ``lm_head`` plus the transforms its config turns on, and a config
  with a logit transform the AutoCompressor does not know is refused.
"""

import pytest
import torch
from safetensors.torch import save_file
from tiny import random_ids, tiny_config
from transformers import AutoModelForCausalLM, CohereConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

from ragcompress import AutoCompressor


def test_base_model_load_reports_nothing_and_leaves_logging_alone(tmp_path, capfd):
    LlamaForCausalLM(tiny_config("llama")).save_pretrained(tmp_path)
    hf_logging.set_verbosity_warning()
    capfd.readouterr()
    model, info = AutoCompressor.from_pretrained(tmp_path, output_loading_info=True, summary_readout="affine")
    assert hf_logging.get_verbosity() == hf_logging.WARNING  # untouched, during and after
    err = capfd.readouterr().err
    assert "embed_summary" not in err and "summary_readout" not in err
    assert not info["missing_keys"]
    assert torch.equal(model.summary_readout.weight, torch.ones(32))  # new parameters initialised
    # a genuinely missing base weight is still reported
    state = {
        k: v
        for k, v in LlamaForCausalLM(tiny_config("llama")).state_dict().items()
        if "layers.1.mlp" not in k
    }
    (tmp_path / "model.safetensors").unlink()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    _, info = AutoCompressor.from_pretrained(tmp_path, output_loading_info=True)
    assert any("layers.1.mlp" in k for k in info["missing_keys"])
    assert not any("embed_summary" in k for k in info["missing_keys"])


def _cohere_config():
    rotary = tiny_config("llama").to_dict()
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
    config = CohereConfig(**{k: rotary[k] for k in keep}, num_key_value_heads=2, logit_scale=0.25)
    config._attn_implementation = "eager"
    return config


@pytest.mark.parametrize("arch", ["llama", "gemma3", "cohere"])
def test_logits_equal_the_base_models_own_forward(arch):
    """Same weights, one segment, no soft prompt: the AutoCompressor's logits are the base model's."""
    config = _cohere_config() if arch == "cohere" else tiny_config(arch)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(config).eval()
    model = AutoCompressor.from_config(config, summary_length=3).eval()
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert missing == ["embed_summary.weight"] and not unexpected
    ids = random_ids(2, 9)
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, base(ids).logits, atol=1e-5, rtol=1e-5)


def test_unknown_logit_transform_is_refused():
    config = tiny_config("llama")
    config.output_logit_multiplier = 2.0
    with pytest.raises(ValueError, match="output_logit_multiplier=2.0, a logit transform .* not supported"):
        AutoCompressor.from_config(config)
