"""The acceptance test of the training core: information crosses segments only through summary vectors."""

import math

import torch
from helpers import tiny_train_config, write_recall_data
from tiny import tiny_config, tiny_tokenizer

from ragcompress import AutoCompressor
from ragcompress.training import train


def test_summary_vectors_carry_a_random_key_across_segments(tmp_path):
    train_path, valid_path = write_recall_data(tmp_path, seed=0)
    torch.manual_seed(0)
    model = AutoCompressor.from_config(tiny_config("llama"), summary_length=4)
    cfg = tiny_train_config(train_path, valid_path, tmp_path / "run", max_steps=800, eval_every=400)
    result = train(cfg, model=model.train(), tokenizer=tiny_tokenizer())
    first, last = [h for h in result.history if "valid/with_summary/nll" in h]
    # The 4 key tokens of segment 2 are uniform over 20 symbols: without segment 1, nothing beats
    # 4·ln(20) nats over the 14 tokens predicted inside the segment, even with the filler predicted
    # perfectly. Ending clearly below that floor is only possible through the summary vectors.
    floor = 4 * math.log(20) / 14
    with_summary = last["valid/with_summary/seg1_nll"]
    without = last["valid/without_summary/seg1_nll"]
    assert with_summary < 0.85 * floor, (with_summary, floor)
    assert with_summary < 0.5 * without, (with_summary, without)
    assert with_summary < first["valid/with_summary/seg1_nll"]  # learned during training
    assert result.history[-1]["loss"] < result.history[0]["loss"]
