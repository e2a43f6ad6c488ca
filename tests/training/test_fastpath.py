"""The fast training path: bucketed static shapes, no host reads of tensor values, a traceable decoder,
and the same losses and gradients as the model's own segment loop."""

import contextlib

import numpy as np
import pytest
import torch
from helpers import tiny_train_config, write_recall_data
from tiny import random_ids, tiny_model, tiny_tokenizer

from ragcompress.training import TrainConfig, fastpath, train
from ragcompress.training.fastpath import FastSegmentLoop, bucket_length, compile_decoder
from ragcompress.training.lora import apply_lora
from ragcompress.training.steps import lm_substeps
from ragcompress.training.trainer import _frozen_copy


def _config(**overrides) -> TrainConfig:
    """2 substeps × 2 randomly cut segments of ~16 tokens: 64-token sequences."""
    values = dict(
        train_data=["x"], segment_length=16, segments_per_substep=2, training_substeps=2, min_segment_length=3
    )
    return TrainConfig(**{**values, **overrides})


def _model(lora: bool = False, seed: int = 0):
    model = tiny_model("llama", summary_length=3, attn="sdpa", seed=seed).train()
    return apply_lora(model, r=4, alpha=8) if lora else model


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _steps(model, cfg, fast, steps=3, teacher=None):
    """A few optimizer steps; each step's substep losses, KL terms and gradients."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    record = []
    for step in range(steps):
        batch = random_ids(3, cfg.sequence_length, seed=step).to(next(model.parameters()).device)
        rng = np.random.default_rng([0, step])
        losses, kls = lm_substeps(model, batch, cfg, rng, 0.5, contextlib.nullcontext, teacher, fast)
        record.append((torch.stack(losses), kls and torch.stack(kls), _grads(model)))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return record


def _assert_same(got, expected, atol=2e-6):
    for (loss, kl, grads), (loss_ref, kl_ref, grads_ref) in zip(got, expected, strict=True):
        torch.testing.assert_close(loss, loss_ref, atol=atol, rtol=1e-5)
        if len(kl_ref):
            torch.testing.assert_close(kl, kl_ref, atol=atol, rtol=1e-5)
        assert grads.keys() == grads_ref.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], grads_ref[name], atol=atol * 5, rtol=1e-4)


def test_bucket_length_rounds_up_and_respects_the_position_cap():
    assert [bucket_length(n, 64) for n in (1, 63, 64, 65, 130)] == [64, 64, 64, 128, 192]
    assert bucket_length(37, 0) == 37  # no bucketing: exact shapes
    assert bucket_length(65, 64, cap=100) == 100  # the model's positions end before the bucket does
    assert bucket_length(90, 64, cap=80) == 90  # never shorter than the text itself
    with pytest.raises(ValueError):
        bucket_length(0, 64)


@pytest.mark.parametrize("lengths,output_softprompt", [([13, 27], True), ([40], False), ([5, 20, 15], True)])
@pytest.mark.parametrize("bucket", [0, 8, 64])
def test_one_forward_equals_the_models_own_loop(lengths, output_softprompt, bucket):
    model = _model()
    ids = random_ids(2, 40)
    softprompt = torch.randn(2, 3, 32)
    fast = FastSegmentLoop(model, bucket)
    for incoming in (None, softprompt):
        args = dict(input_ids=ids, labels=ids, segment_lengths=lengths, softprompt=incoming)
        ref = model(**args, output_softprompt=output_softprompt)
        got = fast(**args, output_softprompt=output_softprompt)
        torch.testing.assert_close(got.loss, ref.loss, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(got.logits, ref.logits, atol=1e-5, rtol=1e-5)
        if output_softprompt:
            torch.testing.assert_close(got.softprompt, ref.softprompt, atol=1e-5, rtol=1e-5)


def test_row_lengths_repeat_across_random_segmentings():
    """Random breakpoints give the model's own loop a new shape almost every time; the buckets do not."""
    cfg = _config(segment_length=32, min_segment_length=8)
    shapes = {"own": set(), "fast": set()}
    model = _model()
    which = ["own"]
    model.model.register_forward_pre_hook(
        lambda _, args, kwargs: shapes[which[0]].add(kwargs["inputs_embeds"].shape[1]), with_kwargs=True
    )
    fast = FastSegmentLoop(model, bucket=16)
    for step in range(12):
        batch = random_ids(2, cfg.sequence_length, seed=step)
        for name, forward in (("own", None), ("fast", fast)):
            which[0] = name
            lm_substeps(
                model, batch, cfg, np.random.default_rng(step), 1.0, contextlib.nullcontext, None, forward
            )
    assert len(shapes["own"]) > 15
    # soft prompt + summary slots per segment place: 0+3, 3+3, 6+3 and 9+0; texts of 8..56 tokens padded
    # to 16, 32, 48 or 64
    allowed = {other + text for other in (3, 6, 9) for text in (16, 32, 48, 64)}
    assert shapes["fast"] == fast.shapes and shapes["fast"] <= allowed


def test_a_bucket_as_long_as_the_longest_segment_gives_every_step_one_sequence_of_shapes():
    """What CUDA graph trees need: they record per sequence of calls, so random breakpoints bucketed more
    finely make each step a new sequence (and a new recording)."""
    cfg = _config(segment_length=32, min_segment_length=8)  # substeps of 64 tokens: segments of 8..56
    assert fastpath.longest_segment(cfg) == 56
    assert fastpath.longest_segment(cfg.override(["randomize_segments=false"])) == 32
    model = _model()
    widths: list[int] = []
    model.model.register_forward_pre_hook(
        lambda _, args, kwargs: widths.append(kwargs["inputs_embeds"].shape[1]), with_kwargs=True
    )
    sequences = {}
    for bucket in (16, fastpath.longest_segment(cfg)):
        fast = FastSegmentLoop(model, bucket)
        sequences[bucket] = set()
        for step in range(8):
            widths.clear()
            batch = random_ids(2, cfg.sequence_length, seed=step)
            lm_substeps(
                model, batch, cfg, np.random.default_rng(step), 1.0, contextlib.nullcontext, None, fast
            )
            sequences[bucket].add(tuple(widths))
    assert len(sequences[16]) > 4
    # soft prompt + summary slots per segment place: 0+3, 3+3, 6+3 and 9+0, each text padded to 56
    assert sequences[56] == {(59, 62, 65, 65)}


@pytest.mark.parametrize(
    "lora,overrides",
    [
        (False, {}),
        (True, {}),
        (False, {"stop_gradient": False}),
        (True, {"segment_gradient_checkpointing": True, "repeat_fraction": 0.5}),
        (False, {"distill_weight": 0.5, "accumulate_summary": False}),
    ],
)
def test_fast_substeps_equal_the_models_own_loop_over_several_steps(lora, overrides):
    cfg = _config(segment_bucket=16, **overrides)
    runs = []
    for fast in (False, True):
        model = _model(lora)
        core = model.get_base_model() if lora else model
        core.config.accumulate_summary = cfg.accumulate_summary
        core.config.segment_gradient_checkpointing = cfg.segment_gradient_checkpointing
        teacher = _frozen_copy(model) if cfg.distill_weight else None
        loop = FastSegmentLoop(model, cfg.segment_bucket) if fast else None
        runs.append(_steps(model, cfg, loop, teacher=teacher))
    _assert_same(runs[1], runs[0])


@contextlib.contextmanager
def _no_host_reads():
    """Fail on any Python-level read of a tensor's value (each is a host-device sync on a GPU)."""

    def refuse(*_, **__):
        raise AssertionError("a tensor value was read on the host inside the step")

    saved = {
        name: getattr(torch.Tensor, name) for name in ("item", "tolist", "__bool__", "__int__", "__float__")
    }
    try:
        for name in saved:
            setattr(torch.Tensor, name, refuse)
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


def test_the_fast_step_reads_no_tensor_value_on_the_host():
    cfg = _config(randomize_segments=True)
    model = _model(lora=True)
    batch = random_ids(2, cfg.sequence_length)
    with _no_host_reads():
        lm_substeps(
            model,
            batch,
            cfg,
            np.random.default_rng(0),
            1.0,
            contextlib.nullcontext,
            None,
            FastSegmentLoop(model),
        )
    # the model's own loop hits transformers' packed-sequence check (a `.all()` per decoder call)
    with _no_host_reads(), pytest.raises(AssertionError, match="read on the host"):
        lm_substeps(model, batch, cfg, np.random.default_rng(0), 1.0, contextlib.nullcontext)


def test_compiled_layers_trace_whole_share_one_graph_per_shape_and_match():
    """LoRA inside the compiled layers, fullgraph (a graph break raises), one graph for all layers."""
    cfg = _config(randomize_segments=False, segment_bucket=16)
    reference = _steps(_model(lora=True), cfg, None, steps=2)
    model = _model(lora=True)
    loop = FastSegmentLoop(model, cfg.segment_bucket)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compile_decoder(model.get_base_model(), scope="layers", backend="aot_eager", fullgraph=True)
    got = _steps(model, cfg, loop, steps=2)
    _assert_same(got, reference)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    # 16-token segments, 3 summary slots, soft prompts of 0/3/6/9 slots: rows of 19, 22, 25, 25 slots (the
    # last segment has no summary tokens but reads 9 slots) → padded to 3 lengths, not 3 × 2 layers
    assert len(loop.shapes) == 3 and graphs == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("lora", [False, True])
def test_layers_replayed_as_cuda_graphs_train_as_the_models_own_loop(lora):
    """compile_mode=reduce-overhead: inductor's kernels captured as CUDA graphs, whose output buffers are
    reused from one replay to the next; the losses and gradients of several steps must not change."""
    cfg = _config(segment_bucket=16)
    reference = _steps(_model(lora).cuda(), cfg, None)
    model = _model(lora).cuda()
    loop = FastSegmentLoop(model, cfg.segment_bucket)
    torch._dynamo.reset()
    compile_decoder(model.get_base_model() if lora else model, mode="reduce-overhead", scope="layers")
    _assert_same(_steps(model, cfg, loop), reference, atol=1e-4)


def test_the_whole_decoder_traces_without_graph_breaks():
    model = _model(lora=True)
    core = model.get_base_model()
    embeds = torch.randn(2, 24, 32)
    with fastpath._causal_sdpa(core.config):
        explained = torch._dynamo.explain(core.model.forward)(inputs_embeds=embeds, use_cache=False)
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    assert core.config._attn_implementation == "sdpa"  # restored after the call


def test_config_keys_defaults_and_fallbacks():
    cfg = _config()
    assert fastpath.resolve(cfg, torch.device("cpu")) == (False, False)
    assert fastpath.resolve(cfg, torch.device("cuda")) == (True, True)
    assert fastpath.resolve(cfg.override(["compile=false"]), torch.device("cuda")) == (True, False)
    assert fastpath.resolve(cfg.override(["fast_path=true"]), torch.device("cpu")) == (True, False)
    for bad in (["segment_bucket=-1"], ["compile_mode=fast"], ["compile_scope=model"]):
        with pytest.raises(ValueError):
            cfg.override(bad).validate()
    said = []
    on = cfg.override(["fast_path=true", "compile=false"])
    assert fastpath.enable(tiny_model("llama", attn="eager"), on, torch.device("cpu"), said.append) is None
    assert fastpath.enable(tiny_model("opt", attn="sdpa"), on, torch.device("cpu"), said.append) is None
    assert fastpath.enable(tiny_model("gemma3", attn="sdpa"), on, torch.device("cpu"), said.append) is None
    assert len(said) == 3 and all(s.startswith("fast training path off") for s in said)
    assert "eager" in said[0] and "position style" in said[1] and "sliding" in said[2]
    assert isinstance(fastpath.enable(_model(), on, torch.device("cpu"), said.append), FastSegmentLoop)
    graphs = cfg.override(
        ["fast_path=true", "compile=true", "compile_mode=reduce-overhead", "segment_bucket=16"]
    )
    for randomize, lines in ((False, 4), (True, 5)):  # compiling is lazy: nothing runs until a call
        said = said[:3]
        setting = graphs.override([f"randomize_segments={str(randomize).lower()}"])
        assert isinstance(
            fastpath.enable(_model(), setting, torch.device("cpu"), said.append), FastSegmentLoop
        )
        assert len(said) == lines
    assert "record CUDA graphs again" in said[3] and said[4].startswith("fast training path:")
    one_shape = graphs.override(
        ["randomize_segments=true", f"segment_bucket={fastpath.longest_segment(graphs)}"]
    )
    said = said[:3]
    fastpath.enable(_model(), one_shape, torch.device("cpu"), said.append)
    assert len(said) == 4 and said[3].startswith("fast training path:")


def test_training_with_the_fast_path_equals_training_without(tmp_path):
    train_path, valid_path = write_recall_data(tmp_path, n_train=64, n_valid=8)
    histories = []
    for fast in (False, True):
        cfg = tiny_train_config(
            train_path,
            valid_path,
            tmp_path / str(fast),
            max_steps=4,
            batch_size=4,
            log_every=1,
            eval_every=4,
            randomize_segments=True,
            min_segment_length=4,
            fast_path=fast,
            segment_bucket=8,
        )
        result = train(cfg, model=_model(seed=1), tokenizer=tiny_tokenizer())
        histories.append(result.history)
    # on a GPU the fast path is compiled: Inductor's fused backward kernels sum in another order, and four
    # steps of updates carry that on (H100s gave 1.25e-4 relative on the gradient norm, and losses 3.6e-5
    # apart, 8e-6 relative, on 2026-12-06)
    rel, loss_abs = (1e-3, 1e-4) if torch.cuda.is_available() else (1e-4, 1e-5)
    for a, b in zip(*histories, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=loss_abs)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=rel)
    assert histories[1][-1]["valid/with_summary/nll"] == pytest.approx(
        histories[0][-1]["valid/with_summary/nll"], abs=loss_abs
    )
