"""Small data sets and configs for trainer tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FILLER = [5, 6, 7, 8] * 8


def write_recall_data(
    directory: Path,
    n_train: int = 4000,
    n_valid: int = 64,
    key_length: int = 4,
    alphabet: int = 20,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Sequences of 2 segments × 16 tokens: a random key opens segment 1 and closes segment 2.

    Segment 2 can only predict the key through the summary vectors of segment 1.
    Each document is 31 tokens; packing appends EOS, so every packed sequence is one document.
    """
    rng = np.random.default_rng(seed)
    paths = []
    for name, count in (("train", n_train), ("valid", n_valid)):
        path = directory / f"{name}.jsonl"
        with open(path, "w") as handle:
            for _ in range(count):
                key = rng.integers(10, 10 + alphabet, key_length).tolist()
                ids = key + FILLER[: 16 - key_length] + FILLER[: 15 - key_length] + key
                handle.write(json.dumps({"input_ids": ids}) + "\n")
        paths.append(path)
    return paths[0], paths[1]


def tiny_train_config(train_path, valid_path, output_dir, **overrides):
    from ragcompress.training import TrainConfig

    values = dict(
        model="tiny",
        lora=False,
        segment_length=16,
        segments_per_substep=2,
        training_substeps=1,
        randomize_segments=False,
        train_data=[str(train_path)],
        valid_data=[str(valid_path)],
        learning_rate=3e-3,
        warmup_steps=20,
        max_steps=600,
        batch_size=32,
        eval_every=0,
        save_every=0,
        output_dir=str(output_dir),
        progress=False,
        log_every=50,
        tensorboard=False,
    )
    values.update(overrides)
    return TrainConfig(**values)
