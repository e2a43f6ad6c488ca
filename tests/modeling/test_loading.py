"""Checkpoint compatibility: official key names, missing summary embeddings, base conversion, round trip."""

import json

import pytest
import torch
from safetensors.torch import save_file
from tiny import EOS, random_ids, tiny_config, tiny_model
from transformers import LlamaForCausalLM, OPTForCausalLM, Qwen3ForCausalLM

from ragcompress import AutoCompressor, LlamaAutoCompressorModel, OPTAutoCompressorModel
from ragcompress.modeling import MissingSummaryEmbeddingsError


def _write_checkpoint(path, base, architecture, summary_length, with_summary=True):
    """A checkpoint laid out like the official release: stock HF keys + embed_summary.weight."""
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in base.state_dict().items()}
    if base.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    if with_summary:
        state["embed_summary.weight"] = torch.randn(summary_length, base.config.hidden_size)
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    config = base.config.to_dict()
    config.update(
        architectures=[architecture],
        summary_length=summary_length,
        accumulate_summary=True,
        segment_gradient_checkpointing=False,
    )
    (path / "config.json").write_text(json.dumps(config))
    return state


@pytest.mark.parametrize(
    "base_cls,arch,expected",
    [(LlamaForCausalLM, "llama", LlamaAutoCompressorModel), (OPTForCausalLM, "opt", OPTAutoCompressorModel)],
)
def test_official_key_names_load_unchanged(tmp_path, base_cls, arch, expected):
    torch.manual_seed(0)
    base = base_cls(tiny_config(arch))
    state = _write_checkpoint(tmp_path, base, expected.__name__, summary_length=5)
    model = AutoCompressor.from_pretrained(tmp_path)
    assert type(model) is expected
    assert model.config.summary_length == 5 and model.config.accumulate_summary is True
    loaded = model.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, atol=0, rtol=0)
    # the direct class loads it too
    again = expected.from_pretrained(tmp_path)
    torch.testing.assert_close(again.embed_summary.weight, state["embed_summary.weight"], atol=0, rtol=0)


def test_autocompressor_checkpoint_without_summary_embeddings_fails_loudly(tmp_path):
    base = LlamaForCausalLM(tiny_config("llama"))
    _write_checkpoint(tmp_path, base, "LlamaAutoCompressorModel", summary_length=5, with_summary=False)
    with pytest.raises(MissingSummaryEmbeddingsError, match="weights have no embed_summary.weight"):
        AutoCompressor.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "base_cls,arch", [(LlamaForCausalLM, "llama"), (Qwen3ForCausalLM, "qwen3"), (OPTForCausalLM, "opt")]
)
def test_base_model_becomes_autocompressor_with_eos_initialised_summary(tmp_path, base_cls, arch):
    torch.manual_seed(1)
    base = base_cls(tiny_config(arch))
    base.save_pretrained(tmp_path)
    model = AutoCompressor.from_pretrained(tmp_path, summary_length=6)
    eos_row = base.get_input_embeddings().weight[EOS]
    assert model.embed_summary.weight.shape == (6, 32)
    torch.testing.assert_close(model.embed_summary.weight, eos_row.expand(6, -1), atol=0, rtol=0)
    # base weights really loaded (not re-initialised)
    torch.testing.assert_close(
        model.get_input_embeddings().weight, base.get_input_embeddings().weight, atol=0, rtol=0
    )


def test_changing_summary_length_of_a_checkpoint_is_refused(tmp_path):
    tiny_model("llama", summary_length=4).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="summary_length=4; it cannot be loaded with summary_length=7"):
        AutoCompressor.from_pretrained(tmp_path, summary_length=7)


@pytest.mark.parametrize("arch", ["llama", "opt", "qwen2", "mistral", "gemma3"])
def test_save_pretrained_round_trip(tmp_path, arch):
    model = tiny_model(arch, summary_length=3, accumulate=False)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["summary_length"] == 3 and saved["accumulate_summary"] is False
    assert saved["segment_gradient_checkpointing"] is False
    loaded = AutoCompressor.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(loaded).__name__ == type(model).__name__
    ids = random_ids(2, 9)
    a = model(ids, segment_lengths=[4, 5], output_softprompt=True)
    b = loaded(ids, segment_lengths=[4, 5], output_softprompt=True)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(a.softprompt, b.softprompt, atol=1e-6, rtol=1e-6)
