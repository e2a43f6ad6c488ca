"""The optional affine summary readout (``summary_readout="affine"``, a ragcompress extension)."""

import pytest
import torch
from tiny import random_ids, tiny_config, tiny_model

from ragcompress import AutoCompressor


def readout_model(arch="llama", seed=0):
    """The same weights as ``tiny_model(arch)``, plus an affine readout."""
    plain = tiny_model(arch, seed=seed)
    config = tiny_config(arch)
    config.summary_readout = "affine"
    model = AutoCompressor.from_config(config, summary_length=4)
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == {"summary_readout.weight", "summary_readout.bias"} and not unexpected
    return plain, model.eval()


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_a_fresh_readout_is_the_identity(arch):
    plain, model = readout_model(arch)
    ids = random_ids(2, 12)
    a = plain(ids, segment_lengths=[6, 6], output_softprompt=True)
    b = model(ids, segment_lengths=[6, 6], output_softprompt=True)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.softprompt, b.softprompt)


def test_readout_maps_summary_vectors_before_the_next_segment_reads_them():
    plain, model = readout_model()
    with torch.no_grad():
        model.summary_readout.weight.uniform_(0.5, 2.0)
        model.summary_readout.bias.normal_(0, 0.3)
    ids = random_ids(2, 12)
    first = plain(ids[:, :6], output_softprompt=True).softprompt  # raw summary vectors of segment 1
    mapped = first * model.summary_readout.weight + model.summary_readout.bias
    torch.testing.assert_close(model(ids[:, :6], output_softprompt=True).softprompt, mapped)
    # segment 2 reads the mapped vectors: the same logits as the plain model given them as soft prompt
    expected = plain(ids[:, 6:], softprompt=mapped).logits
    got = model(ids, segment_lengths=[6, 6]).logits[:, 6:]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_init_standardises_summary_vectors_to_token_embedding_scale():
    _, model = readout_model()
    sample = random_ids(4, 16, seed=3)
    # one compression step: later steps read already-mapped vectors, so their statistics move a little
    model.init_summary_readout(sample, segment_length=16)
    vectors = model(sample, output_softprompt=True).softprompt.reshape(-1, 32)
    target = model.get_input_embeddings().weight.pow(2).mean().sqrt()
    torch.testing.assert_close(vectors.mean(0), torch.zeros(32), atol=1e-4, rtol=0)
    torch.testing.assert_close(vectors.std(0), target.expand(32), atol=1e-4, rtol=1e-4)
    assert not model.training  # the mode it had before


def test_readout_round_trips_and_refuses_mismatches(tmp_path):
    _, model = readout_model()
    model.init_summary_readout(random_ids(2, 16), segment_length=8)
    model.save_pretrained(tmp_path)
    loaded = AutoCompressor.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert loaded.config.summary_readout == "affine"
    ids = random_ids(1, 12)
    torch.testing.assert_close(
        loaded(ids, segment_lengths=6, output_softprompt=True).softprompt,
        model(ids, segment_lengths=6, output_softprompt=True).softprompt,
    )
    with pytest.raises(
        ValueError, match="was saved with summary_readout='affine'; it cannot be loaded with 'none'"
    ):
        AutoCompressor.from_pretrained(tmp_path, summary_readout="none")


def test_bad_readout_settings_give_one_clear_error():
    config = tiny_config("llama")
    config.summary_readout = "mlp"
    with pytest.raises(ValueError, match="summary_readout='mlp' is unknown"):
        AutoCompressor.from_config(config, summary_length=4)
    with pytest.raises(ValueError, match="init_summary_readout needs config.summary_readout='affine'"):
        tiny_model().init_summary_readout(random_ids(1, 8))
