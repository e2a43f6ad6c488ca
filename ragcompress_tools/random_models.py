"""Random-weight stand-ins for the real models, for tests and benchmarks: nothing is downloaded.

- `word_level_tokenizer`: a fast tokenizer that maps whitespace-separated words to ids, so a text of
  n invented words is exactly n tokens.
- `save_random_embedder`: a random BERT with mean pooling, saved as a sentence-transformers folder that
  `ragcompress.embedder.Embedder.load` (and an index) names by path like any other embedder.
"""

from __future__ import annotations

from pathlib import Path


def word_level_tokenizer(vocab: dict[str, int], unknown: str, **special_tokens: str):
    """A `PreTrainedTokenizerFast` over ``vocab`` (word → id); words not in it become ``unknown``.

    ``special_tokens`` (``pad_token="<pad>"``, ``eos_token=...``) name the tokenizer's special tokens.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unknown))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, **special_tokens)


def save_random_embedder(
    path: Path,
    tokenizer,
    layers: int,
    hidden: int,
    heads: int,
    intermediate: int,
    max_seq_length: int,
    seed: int = 0,
) -> Path:
    """A ``layers`` × ``hidden`` random BERT over ``tokenizer``'s vocabulary, mean-pooled, at ``path``.

    The BERT itself is written beside it (``<path>-bert``), as sentence-transformers reads it from there.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    try:  # sentence-transformers ≥ 6; before it the modules lived in sentence_transformers.models
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ModuleNotFoundError:
        from sentence_transformers.models import Pooling, Transformer
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
    )
    torch.manual_seed(seed)
    source = path.with_name(path.name + "-bert")
    BertModel(config).save_pretrained(source)
    tokenizer.save_pretrained(source)
    modules = [Transformer(str(source), max_seq_length=max_seq_length), Pooling(hidden, "mean")]
    SentenceTransformer(modules=modules, device="cpu").save(str(path))
    return path
