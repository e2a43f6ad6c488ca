"""Tiny random-weight configs shared by the unit tests (CPU, milliseconds per forward)."""

from __future__ import annotations

import torch
from transformers import (
    Gemma3TextConfig,
    LlamaConfig,
    MistralConfig,
    OPTConfig,
    Qwen2Config,
    Qwen3Config,
)

VOCAB = 96
EOS = 2
PAD = 0


def tiny_config(
    arch: str = "llama",
    attn: str = "eager",
    vocab_size: int = VOCAB,
    max_positions: int = 512,
    eos: int = EOS,
    pad: int = PAD,
    bos: int = 1,
):
    """A 2-layer, 32-wide config of ``arch``; the vocabulary and special ids can match a real tokenizer."""
    common = dict(vocab_size=vocab_size, eos_token_id=eos, pad_token_id=pad, bos_token_id=bos)
    rotary = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        **common,
    )
    if arch == "llama":
        config = LlamaConfig(**rotary)
    elif arch == "opt":
        config = OPTConfig(
            hidden_size=32,
            ffn_dim=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=max_positions,
            word_embed_proj_dim=32,
            dropout=0.0,
            **common,
        )
    elif arch == "qwen2":
        config = Qwen2Config(**rotary)
    elif arch == "qwen3":
        config = Qwen3Config(head_dim=8, **rotary)
    elif arch == "mistral":
        config = MistralConfig(sliding_window=None, **rotary)
    elif arch == "gemma3":
        config = Gemma3TextConfig(
            head_dim=8, sliding_window=64, final_logit_softcapping=30.0, query_pre_attn_scalar=8, **rotary
        )
    else:
        raise ValueError(arch)
    config._attn_implementation = attn
    return config


def tiny_model(
    arch: str = "llama", summary_length: int = 4, accumulate: bool = True, attn: str = "eager", seed: int = 0
):
    from ragcompress import AutoCompressor

    torch.manual_seed(seed)
    config = tiny_config(arch, attn)
    config.accumulate_summary = accumulate
    model = AutoCompressor.from_config(config, summary_length=summary_length)
    # random summary embeddings of the same scale as token embeddings, so they matter in tests
    with torch.no_grad():
        model.embed_summary.weight.normal_(0, 0.5)
    return model.eval()


def random_ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, length), generator=g)


def tiny_tokenizer():
    """A real (word-level) fast tokenizer over the tiny vocabulary: tokens "<pad>", "<bos>", "<eos>", "t3".."t95"."""
    from ragcompress_tools.random_models import word_level_tokenizer

    vocab = {"<pad>": PAD, "<bos>": 1, "<eos>": EOS}
    vocab.update({f"t{i}": i for i in range(3, VOCAB)})
    return word_level_tokenizer(vocab, "<pad>", pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
