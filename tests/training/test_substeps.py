"""Stop-gradient between substeps, exact resume, LoRA adapters."""

import contextlib
import json

import numpy as np
import pytest
import torch
from helpers import tiny_train_config, write_recall_data
from tiny import random_ids, tiny_model, tiny_tokenizer

from ragcompress.training import TrainConfig, train
from ragcompress.training.lora import apply_lora, load_adapter, save_adapter
from ragcompress.training.steps import lm_substeps
from ragcompress.training.trainer import _frozen_copy


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _two_by_two(**overrides) -> TrainConfig:
    """2 substeps × 2 fixed segments of 6 tokens: 24-token sequences."""
    return TrainConfig(
        train_data=["x"],
        segment_length=6,
        segments_per_substep=2,
        training_substeps=2,
        randomize_segments=False,
        **overrides,
    )


def test_stop_gradient_keeps_substep_two_out_of_substep_one():
    cfg = _two_by_two()
    model = tiny_model("llama", summary_length=2).train()
    batch = random_ids(2, 24)
    lm_substeps(model, batch, cfg, None, 1.0, contextlib.nullcontext)
    stopped = _grads(model)

    # reference: substep 1 on its own + substep 2 reading a constant (detached) soft prompt
    model.zero_grad()
    first = model(batch[:, :12], labels=batch[:, :12], segment_lengths=[6, 6], output_softprompt=True)
    (first.loss / 2).backward()
    second = model(
        batch[:, 12:], labels=batch[:, 12:], segment_lengths=[6, 6], softprompt=first.softprompt.detach()
    )
    (second.loss / 2).backward()
    for name, grad in _grads(model).items():
        torch.testing.assert_close(stopped[name], grad, atol=1e-6, rtol=1e-5)

    # without the stop-gradient, substep 2's loss reaches substep 1's computation through the soft prompt
    model.zero_grad()
    cfg.stop_gradient = False
    lm_substeps(model, batch, cfg, None, 1.0, contextlib.nullcontext)
    full = _grads(model)
    assert not torch.allclose(full["embed_summary.weight"], stopped["embed_summary.weight"])


def _kl(student, teacher):
    """KL(teacher ‖ student) per position, written out: the reference for `distill_kl`."""
    p = torch.softmax(teacher.double(), -1)
    return (p * (torch.log(p) - torch.log_softmax(student.double(), -1))).sum(-1).mean()


def test_distillation_adds_the_kl_to_a_frozen_teachers_text_reading():
    cfg = _two_by_two(distill_weight=0.5)
    model = tiny_model("llama", summary_length=2).train()
    frozen = _frozen_copy(model)
    with torch.no_grad():  # training has moved the student away from the teacher
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    batch = random_ids(2, 24)
    with pytest.raises(ValueError, match="needs a teacher"):
        lm_substeps(model, batch, cfg, None, 1.0, contextlib.nullcontext)
    losses, kls = lm_substeps(model, batch, cfg, None, 1.0, contextlib.nullcontext, frozen)
    got = _grads(model)
    assert len(losses) == len(kls) == 2
    assert all(p.grad is None for p in frozen.parameters())

    # reference: the teacher reads all 24 tokens as text; substep 1's KL covers its second segment (the
    # first has no context in either reading), substep 2's all its tokens
    model.zero_grad()
    with torch.no_grad():
        teacher = frozen(batch).logits
    first = model(batch[:, :12], labels=batch[:, :12], segment_lengths=[6, 6], output_softprompt=True)
    kl1 = _kl(first.logits[:, 6:], teacher[:, 6:12])
    ((first.loss + 0.5 * kl1) / 2).backward()
    second = model(
        batch[:, 12:], labels=batch[:, 12:], segment_lengths=[6, 6], softprompt=first.softprompt.detach()
    )
    kl2 = _kl(second.logits, teacher[:, 12:])
    ((second.loss + 0.5 * kl2) / 2).backward()
    torch.testing.assert_close(
        torch.stack(kls).double(), torch.stack([kl1, kl2]).detach(), atol=1e-6, rtol=1e-5
    )
    assert kl1 > 0 and kl2 > 0
    for name, grad in _grads(model).items():
        torch.testing.assert_close(got[name], grad, atol=1e-6, rtol=1e-5)
    # the left-out first segment: with the teacher's own weights the two readings agree there exactly
    alone = frozen(batch[:, :12], segment_lengths=[6, 6]).logits
    assert float(_kl(alone[:, :6], teacher[:, :6])) < 1e-10

    # distill_teacher=self: the trained model is its own teacher, read without gradients
    model.zero_grad()
    _, kls_self = lm_substeps(model, batch, cfg, None, 1.0, contextlib.nullcontext, model)
    with torch.no_grad():
        own = model(batch).logits
    expected = _kl(first.logits[:, 6:].detach(), own[:, 6:12])
    torch.testing.assert_close(kls_self[0].double(), expected, atol=1e-6, rtol=1e-5)

    # distill_weight=0: no teacher, no KL, the plain language-modelling gradients
    model.zero_grad()
    cfg.distill_weight = 0.0
    losses0, kls0 = lm_substeps(model, batch, cfg, None, 1.0, contextlib.nullcontext)
    assert kls0 == [] and torch.allclose(torch.stack(losses0), torch.stack(losses))


def test_distillation_from_a_text_reader_closes_the_gap_to_it(tmp_path):
    """A model that learned to copy a key as plain text teaches its compressed reading: the KL falls."""
    train_path, valid_path = write_recall_data(tmp_path, n_train=2000)
    torch.manual_seed(0)
    model = tiny_model("llama", summary_length=2).train()
    text = tiny_train_config(
        train_path, valid_path, tmp_path / "text", segment_length=32, segments_per_substep=1, max_steps=300
    )
    train(text, model=model, tokenizer=tiny_tokenizer())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = tiny_train_config(
        train_path,
        valid_path,
        tmp_path / "distil",
        distill_weight=1.0,
        max_steps=100,
        warmup_steps=5,
        log_every=10,
    )
    history = train(cfg, model=model, tokenizer=tiny_tokenizer()).history
    kl = [h["distill_kl"] for h in history]
    assert kl[0] > 1.0  # untrained summary vectors: the key is unknown to the compressed reading
    assert sum(kl[-10:]) / 10 < 0.25 * kl[0]
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_resume_gives_the_same_loss_curve(tmp_path):
    train_path, valid_path = write_recall_data(tmp_path, n_train=300)
    tok = tiny_tokenizer()
    common = dict(
        max_steps=8,
        save_every=4,
        batch_size=8,
        warmup_steps=2,
        segments_per_substep=2,
        training_substeps=2,
        segment_length=8,
        randomize_segments=True,
        min_segment_length=3,
    )

    straight = train(
        tiny_train_config(train_path, valid_path, tmp_path / "a", **common),
        model=tiny_model("llama", summary_length=2).train(),
        tokenizer=tok,
    )

    class Interrupted(Exception):
        pass

    def crash_after_four(step, metrics):
        if step == 5:
            raise Interrupted

    cfg_b = tiny_train_config(train_path, valid_path, tmp_path / "b", **common)
    with pytest.raises(Interrupted):
        train(
            cfg_b,
            callbacks=[crash_after_four],
            model=tiny_model("llama", summary_length=2).train(),
            tokenizer=tok,
        )
    resumed = train(cfg_b, model=tiny_model("llama", summary_length=2, seed=99).train(), tokenizer=tok)
    assert [h["step"] for h in resumed.history] == [5, 6, 7, 8]
    for a, b in zip(straight.history[4:], resumed.history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6)
        assert a["lr"] == b["lr"]


def test_lora_adapter_round_trip(tmp_path):
    torch.manual_seed(0)
    base = tiny_model("llama", summary_length=3)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    peft_model = apply_lora(base, r=4, alpha=8, targets=["q_proj", "v_proj", "gate_proj"])
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("embed_summary" in n for n in trainable) and any("lora_A" in n for n in trainable)
    assert not any("embed_tokens" in n for n in trainable)
    with torch.no_grad():  # pretend training moved the adapter and the summary embeddings
        for param in peft_model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.05)
    ids = random_ids(2, 10)
    expected = peft_model(input_ids=ids, segment_lengths=[4, 6], output_softprompt=True)
    save_adapter(peft_model, tmp_path / "adapter", dtype=torch.float32)

    for merge in (False, True):
        fresh = tiny_model("llama", summary_length=3)
        fresh.load_state_dict(base_state)
        loaded = load_adapter(fresh, tmp_path / "adapter", merge=merge)
        got = loaded(input_ids=ids, segment_lengths=[4, 6], output_softprompt=True)
        torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got.softprompt, expected.softprompt, atol=1e-5, rtol=1e-4)

    with pytest.raises(ValueError, match="summary_length=3 but the model has 5"):
        load_adapter(tiny_model("llama", summary_length=5), tmp_path / "adapter")


def test_options_of_a_newer_peft_left_unset_load_without_peft_s_upgrade_warning(tmp_path, recwarn):
    """An adapter saved by a newer peft lists options the installed one lacks; unset, they change
    nothing and peft's "upgrade" warning is dropped; one that is set keeps it."""
    save_adapter(
        apply_lora(tiny_model("llama", summary_length=3), r=4, alpha=8), tmp_path / "a", dtype=torch.float32
    )
    config_path = tmp_path / "a" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "a_future_config": None, "use_a_future_trick": False}))
    load_adapter(tiny_model("llama", summary_length=3), tmp_path / "a")
    assert not [w for w in recwarn if "Unexpected keyword arguments" in str(w.message)]
    config_path.write_text(json.dumps({**config, "a_future_config": None, "use_a_future_trick": True}))
    with pytest.warns(
        UserWarning, match=r"Unexpected keyword arguments \['a_future_config', 'use_a_future_trick'\]"
    ):
        load_adapter(tiny_model("llama", summary_length=3), tmp_path / "a")


def test_lora_training_moves_only_adapter_weights(tmp_path):
    train_path, valid_path = write_recall_data(tmp_path, n_train=200)
    model = tiny_model("llama", summary_length=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = tiny_train_config(
        train_path,
        valid_path,
        tmp_path / "run",
        lora=True,
        lora_r=4,
        lora_targets=("q_proj", "v_proj"),
        max_steps=5,
        batch_size=4,
    )
    result = train(cfg, model=model.train(), tokenizer=tiny_tokenizer())
    assert (result.final_dir / "adapter_model.safetensors").is_file()
    assert (result.final_dir / "ragcompress.json").is_file()
    after = model.state_dict()  # the wrapped model kept the base frozen
    assert torch.equal(after["model.embed_tokens.weight"], before["model.embed_tokens.weight"])
    trained = [v for k, v in after.items() if "embed_summary" in k and "modules_to_save" in k]
    assert len(trained) == 1, [k for k in after if "embed_summary" in k]
    assert not torch.equal(trained[0], before["embed_summary.weight"])  # summary embeddings trained
    assert np.isfinite(result.history[-1]["loss"])


def test_continued_adapter_records_its_lineage(tmp_path):
    train_path, valid_path = write_recall_data(tmp_path, n_train=100)
    lora = dict(lora=True, lora_r=4, lora_targets=("q_proj", "v_proj"), batch_size=4)
    first = train(
        tiny_train_config(train_path, valid_path, tmp_path / "a", max_steps=3, learning_rate=1e-3, **lora),
        model=tiny_model("llama", summary_length=2).train(),
        tokenizer=tiny_tokenizer(),
    )
    second_cfg = tiny_train_config(
        train_path, valid_path, tmp_path / "b", max_steps=2, seed=7, init_adapter=str(first.final_dir), **lora
    )
    second = train(
        second_cfg, model=tiny_model("llama", summary_length=2).train(), tokenizer=tiny_tokenizer()
    )
    meta = json.loads((second.final_dir / "ragcompress.json").read_text())
    assert meta["steps"] == 2 and meta["total_steps"] == 5
    assert meta["parent"]["steps"] == 3 and "parent" not in meta["parent"]
    assert meta["parent"]["recipe"]["learning_rate"] == 1e-3 and meta["parent"]["recipe"]["stage"] == "lm"
    assert meta["config"]["init_adapter"] == str(first.final_dir)

    third_cfg = tiny_train_config(
        train_path, valid_path, tmp_path / "c", max_steps=1, init_adapter=str(second.final_dir), **lora
    )
    third = train(third_cfg, model=tiny_model("llama", summary_length=2).train(), tokenizer=tiny_tokenizer())
    meta = json.loads((third.final_dir / "ragcompress.json").read_text())
    assert meta["total_steps"] == 6 and meta["parent"]["parent"]["steps"] == 3  # the whole chain


def test_repeat_rows_copy_the_first_half_of_every_substep():
    from ragcompress.training.steps import with_repeats

    cfg = TrainConfig(
        train_data=["x"], segment_length=4, segments_per_substep=2, training_substeps=2, repeat_fraction=1.0
    )
    batch = random_ids(3, 16)
    out = with_repeats(batch, cfg, np.random.default_rng(0))
    assert torch.equal(out[:, 4:8], batch[:, 0:4]) and torch.equal(out[:, 12:16], batch[:, 8:12])
    assert torch.equal(out[:, :4], batch[:, :4])
    cfg.repeat_fraction = 0.0
    assert with_repeats(batch, cfg, np.random.default_rng(0)) is batch


def test_learning_rate_follows_the_larger_of_step_and_time_progress():
    from ragcompress.training.trainer import learning_rate

    cfg = TrainConfig(learning_rate=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert learning_rate(cfg, 4) == pytest.approx(0.5)  # warm-up is counted in steps
    assert learning_rate(cfg, 4, time_progress=0.9) == pytest.approx(0.5)
    assert learning_rate(cfg, 60) == pytest.approx(0.55)  # half-way down the cosine
    assert learning_rate(cfg, 60, time_progress=0.2) == pytest.approx(0.55)  # steps are further along
    assert learning_rate(cfg, 60, time_progress=1.0) == pytest.approx(0.1)  # budget spent: the floor
    assert learning_rate(cfg, 110) == pytest.approx(0.1)


def test_time_schedule_decays_over_the_budget_and_resumes_from_its_progress(tmp_path, monkeypatch):
    import ragcompress.training.trainer as trainer

    train_path, valid_path = write_recall_data(tmp_path, n_train=200)
    tok = tiny_tokenizer()
    now = [0.0]
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: now[0])

    def tick(step, metrics):  # every step costs 10 "seconds" of a 100-second budget
        now[0] += 10.0

    cfg = tiny_train_config(
        train_path,
        valid_path,
        tmp_path / "t",
        max_seconds=100,
        time_schedule=True,
        max_steps=1000,
        warmup_steps=2,
        batch_size=4,
        segment_length=8,
        min_lr_ratio=0.1,
        save_every=0,
    )
    result = train(cfg, callbacks=[tick], model=tiny_model("llama", summary_length=2).train(), tokenizer=tok)
    assert not result.finished and result.steps == 11  # the step at 110 s would overrun the budget
    for entry in result.history:  # step s ran at 10·(s-1) seconds, i.e. 10·(s-1) % of the budget
        index = entry["step"] - 1
        assert entry["lr"] == pytest.approx(trainer.learning_rate(cfg, index, time_progress=index / 10))
    assert result.history[-1]["lr"] == pytest.approx(0.1 * cfg.learning_rate)  # the floor, on time
    assert trainer.learning_rate(cfg, 10) > 0.99 * cfg.learning_rate  # steps alone would barely decay
    state = json.loads((tmp_path / "t" / "checkpoints" / "step-0000011" / "state.json").read_text())
    assert state["time_progress"] == pytest.approx(1.0)

    # a run resumed half-way through its schedule spends its own budget on the other half
    state["time_progress"] = 0.5
    (tmp_path / "t" / "checkpoints" / "step-0000011" / "state.json").write_text(json.dumps(state))
    now[0] = 0.0
    resumed = train(cfg, callbacks=[tick], model=tiny_model("llama", summary_length=2).train(), tokenizer=tok)
    assert resumed.history[0]["step"] == 12
    for entry in resumed.history:
        spent = (entry["step"] - 12) / 10
        expected = trainer.learning_rate(cfg, entry["step"] - 1, time_progress=0.5 + 0.5 * spent)
        assert entry["lr"] == pytest.approx(expected)
    assert resumed.history[-1]["lr"] == pytest.approx(0.1 * cfg.learning_rate)

    with pytest.raises(ValueError, match="time_schedule=true needs max_seconds"):
        TrainConfig(train_data=["x"], time_schedule=True).validate()


def test_stop_at_step_cuts_a_run_where_a_lost_machine_cut_it_with_the_schedule_unchanged(tmp_path):
    import ragcompress.training.trainer as trainer

    train_path, valid_path = write_recall_data(tmp_path, n_train=200)
    tok = tiny_tokenizer()
    cfg = tiny_train_config(
        train_path,
        valid_path,
        tmp_path / "cut",
        stop_at_step=4,
        max_steps=10,
        warmup_steps=2,
        batch_size=4,
        segment_length=8,
        min_lr_ratio=0.1,
        save_every=0,
    )
    result = train(cfg, model=tiny_model("llama", summary_length=2).train(), tokenizer=tok)
    assert not result.finished and [e["step"] for e in result.history] == [1, 2, 3, 4]
    for entry in result.history:  # the learning rates of the ten-step schedule, not of a four-step one
        assert entry["lr"] == pytest.approx(trainer.learning_rate(cfg, entry["step"] - 1))
    assert result.history[-1]["lr"] > 0.5 * cfg.learning_rate
    assert (tmp_path / "cut" / "checkpoints" / "step-0000004" / "state.json").is_file()
    assert not (tmp_path / "cut" / "final").exists()  # `train_default.py finalize` makes it
