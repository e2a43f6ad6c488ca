import json

import pytest

from ragcompress.training import TrainConfig


def test_yaml_json_and_cli_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("max_steps: 7\nlora_targets: [q_proj, v_proj]\nlearning_rate: 1\n")
    cfg = TrainConfig.load(tmp_path / "c.yaml")
    assert cfg.max_steps == 7 and cfg.lora_targets == ("q_proj", "v_proj") and cfg.learning_rate == 1.0
    cfg = cfg.override(["max_steps=9", "train_data=[a.jsonl, b.jsonl]", "lora=false", "qa_data=x"])
    assert cfg.max_steps == 9 and cfg.train_data == ["a.jsonl", "b.jsonl"] and cfg.lora is False
    assert cfg.qa_data == ["x"]
    cfg.save(tmp_path / "saved.json")
    assert TrainConfig.load(tmp_path / "saved.json") == cfg
    assert json.loads((tmp_path / "saved.json").read_text())["max_steps"] == 9


def test_bad_configs_are_refused_with_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"unknown keys \['max_stepz'\]"):
        TrainConfig().override(["max_stepz=3"])
    with pytest.raises(ValueError, match="must look like key=value"):
        TrainConfig().override(["max_steps"])
    with pytest.raises(ValueError, match="does not exist"):
        TrainConfig.load(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        TrainConfig.load(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="train_data is empty"):
        TrainConfig().validate()
    with pytest.raises(ValueError, match="schedule must be"):
        TrainConfig(train_data=["x"], schedule="wavy").validate()


def test_sequence_length_follows_the_recipe():
    cfg = TrainConfig(segment_length=512, segments_per_substep=2, training_substeps=3)
    assert cfg.substep_length == 1024 and cfg.sequence_length == 3072


def test_numbers_written_without_a_dot_are_numbers():
    # YAML 1.1 reads "8e-4" as a string; a float field must still get a float, or one clear error
    cfg = TrainConfig().override(["learning_rate=8e-4", "summary_learning_rate=1e-3", "min_lr_ratio=1"])
    assert cfg.learning_rate == 8e-4 and cfg.summary_learning_rate == 1e-3 and cfg.min_lr_ratio == 1.0
    with pytest.raises(ValueError, match="learning_rate='fast' is not a number"):
        TrainConfig().override(["learning_rate=fast"])
