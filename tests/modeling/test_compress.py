"""`compress`: batched equals one-by-one, multi-step chunks, inputs and errors."""

import pytest
import torch
from tiny import VOCAB, tiny_model

from ragcompress import compress
from ragcompress.modeling import segment_plan


def _chunks(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in lengths]


@pytest.mark.parametrize("arch", ["llama", "opt", "qwen2", "gemma3"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_batched_equals_one_by_one(arch, attn):
    model = tiny_model(arch, summary_length=3, attn=attn)
    chunks = _chunks([7, 19, 3, 12, 19, 1, 30])
    batched = compress(model, chunks, batch_size=4)
    single = [compress(model, [c], batch_size=1)[0] for c in chunks]
    assert [v.shape for v in batched] == [(3, 32)] * len(chunks)
    for a, b in zip(batched, single):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_multi_step_chunks_give_kappa_times_steps_vectors(arch):
    model = tiny_model(arch, summary_length=2)
    chunks = _chunks([25, 10, 21, 30, 8])
    batched = compress(model, chunks, batch_size=3, segment_length=10)
    assert (
        [v.shape[0] for v in batched]
        == [2 * len(segment_plan(len(c), 10)) for c in chunks]
        == [6, 2, 6, 6, 2]
    )
    for chunk, vectors in zip(chunks, batched):
        ref = model(
            torch.tensor([chunk]), segment_lengths=segment_plan(len(chunk), 10), output_softprompt=True
        )
        torch.testing.assert_close(vectors, ref.softprompt[0], atol=1e-5, rtol=1e-5)


def test_compress_with_tokenizer_and_texts():
    class Tok:
        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [3 + (ord(c) % 50) for c in text]}

    model = tiny_model("llama", summary_length=2)
    texts = ["hello world", "a", "compress me please"]
    from_text = compress(model, Tok(), texts, batch_size=2)
    from_ids = compress(model, [Tok()(t)["input_ids"] for t in texts])
    for a, b in zip(from_text, from_ids):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_compress_restores_training_mode_and_rejects_bad_input():
    model = tiny_model("llama", summary_length=2).train()
    compress(model, [[5, 6, 7]])
    assert model.training
    with pytest.raises(ValueError, match="chunk 1 has no tokens"):
        compress(model, [[5, 6], []])
    with pytest.raises(TypeError, match="no tokenizer"):
        compress(model, ["some text"])
