"""`train(config)`: the one training loop of ragcompress, top to bottom.

set up (devices, model, LoRA, data) → for each optimizer step: micro-batches of substeps (+ fused QA)
→ clip, step → log, validate, checkpoint → save the final adapter or model. Runs on one device or under
``torchrun`` (data parallel: `training.distributed`): every rank starts from rank 0's trained weights,
reads its own share of each batch, and the gradients are averaged over the ranks once per optimizer step.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ragcompress.modeling import AutoCompressor, unwrap
from ragcompress.training import fastpath
from ragcompress.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ragcompress.training.config import TrainConfig
from ragcompress.training.data import batch_indices, build_sequences
from ragcompress.training.distributed import (
    agree_on_clock,
    average_gradients,
    broadcast_trained,
    setup_distributed,
)
from ragcompress.training.logging import MetricsLogger
from ragcompress.training.lora import apply_lora, load_adapter_weights, save_adapter, training_meta
from ragcompress.training.qa_data import QAExamples
from ragcompress.training.steps import lm_substeps, qa_loss, validate, with_repeats


@dataclass
class TrainResult:
    output_dir: Path
    final_dir: Path
    steps: int
    history: list[dict] = field(default_factory=list)
    valid: dict = field(default_factory=dict)
    finished: bool = True  # False when max_seconds stopped the run early (resume to continue)


def build_model(cfg: TrainConfig, device: torch.device, bf16: bool):
    """The AutoCompressor to train and its tokenizer (LoRA bases stay in bf16 on GPUs)."""
    dtype = torch.bfloat16 if (bf16 and cfg.lora) else torch.float32
    if cfg.model == "smollm2":
        from ragcompress.defaults import load_base_compressor

        model, tokenizer = load_base_compressor(
            cfg.summary_length,
            device="cpu",
            dtype=dtype,
            attn_implementation=cfg.attn_implementation,
            summary_readout=cfg.summary_readout,
        )
    else:
        from transformers import AutoTokenizer

        model = AutoCompressor.from_pretrained(
            cfg.model,
            summary_length=cfg.summary_length,
            dtype=dtype,
            attn_implementation=cfg.attn_implementation,
            summary_readout=cfg.summary_readout,
        )
        tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    return model, tokenizer


def prepare_for_training(model, cfg: TrainConfig, device: torch.device, sample: np.ndarray | None = None):
    """Apply the config's summary settings and LoRA (unless already wrapped); fp32 trained weights.

    A fresh affine summary readout is initialised from ``sample`` (a few training sequences) before the
    adapter of ``init_adapter`` (if any) is loaded on top.
    """
    core = unwrap(model)
    core.config.accumulate_summary = cfg.accumulate_summary
    core.config.segment_gradient_checkpointing = cfg.segment_gradient_checkpointing
    already_peft = hasattr(model, "peft_config")
    if getattr(core.config, "summary_readout", "none") == "affine" and sample is not None and len(sample):
        ids = torch.from_numpy(np.asarray(sample[:8]).astype(np.int64))
        core.to(device).init_summary_readout(ids.to(device), cfg.segment_length)
    if cfg.lora and not already_peft:
        model = apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets)
        if cfg.init_adapter:
            load_adapter_weights(model, cfg.init_adapter)
    elif cfg.init_adapter:
        raise ValueError("config: init_adapter needs lora=true")
    # master copies of trained weights in fp32; autocast runs the matmuls in bf16
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    return model.to(device)


def _frozen_copy(model):
    """A gradient-free copy of the AutoCompressor inside ``model`` (LoRA layers included), in eval mode."""
    teacher = copy.deepcopy(unwrap(model)).eval()
    teacher.requires_grad_(False)
    return teacher


def _optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    summary, decay, plain = [], [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if "embed_summary" in name:
            summary.append(param)
        elif param.dim() < 2 or "embed" in name or "norm" in name:
            plain.append(param)  # no weight decay on norms, biases, embeddings (OPT's frozen row 1 too)
        else:
            decay.append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay, "lr_scale": 1.0},
        {"params": plain, "weight_decay": 0.0, "lr_scale": 1.0},
        {
            "params": summary,
            "weight_decay": 0.0,
            "lr_scale": (cfg.summary_learning_rate or cfg.learning_rate) / cfg.learning_rate,
        },
    ]
    groups = [g for g in groups if g["params"]]
    # one fused kernel per step on GPUs instead of a launch per tensor operation (same update)
    fused = all(p.is_cuda for g in groups for p in g["params"]) or None
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, 0.95), fused=fused)


def learning_rate(cfg: TrainConfig, step: int, time_progress: float = 0.0) -> float:
    """Linear warm-up, then cosine or linear decay to ``min_lr_ratio``.

    A pure function of the step, unless ``time_progress`` (the share of the wall-clock budget spent,
    used with ``time_schedule``) is further along than the step count.
    """
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.learning_rate
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, max(progress, time_progress))
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if cfg.schedule == "cosine" else 1 - progress
    return cfg.learning_rate * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * shape)


def train(
    cfg: TrainConfig, callbacks: list[Callable[[int, dict], None]] = (), model=None, tokenizer=None
) -> TrainResult:
    cfg.validate()
    started = time.perf_counter()  # max_seconds counts model loading and tokenization too
    env = setup_distributed()
    out = Path(cfg.output_dir)
    bf16 = cfg.bf16 if cfg.bf16 is not None else env.device.type == "cuda"
    torch.manual_seed(cfg.seed)
    if model is None:
        model, tokenizer = build_model(cfg, env.device, bf16)
    elif tokenizer is None:
        raise ValueError("train(model=...) also needs tokenizer=")
    if tokenizer.pad_token is None:  # stage-2 batches are padded (masked positions): EOS serves
        tokenizer.pad_token = tokenizer.eos_token
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "config.json")

    # ---- data (rank 0 tokenizes, the others read its cache)
    def sequences():
        return build_sequences(
            cfg.train_data,
            cfg.valid_data,
            tokenizer,
            cfg.sequence_length,
            out / "data",
            cfg.valid_fraction,
            cfg.text_field,
            cfg.max_train_sequences,
            cfg.max_valid_sequences,
        )

    train_rows = valid_rows = np.zeros((0, cfg.sequence_length), dtype=np.uint32)
    if cfg.train_data:
        if env.main:
            train_rows, valid_rows = sequences()
        if env.world > 1:
            dist.barrier()
        if not env.main:
            train_rows, valid_rows = sequences()
    model = prepare_for_training(model, cfg, env.device, train_rows)
    qa = (
        QAExamples(cfg.qa_data, cfg.qa_k, cfg.seed, cfg.qa_text_fraction, kind_weights=cfg.qa_kind_weights)
        if cfg.qa_data
        else None
    )

    optimizer = _optimizer(model, cfg)
    # distillation's teacher: the model as this training starts (init_adapter loaded, before a resumed
    # checkpoint), frozen, so a resumed run distils towards the same teacher as an uninterrupted one; or
    # with distill_teacher=self the trained model itself (lm_substeps reads it without gradients)
    teacher = None
    if cfg.distill_weight:
        teacher = _frozen_copy(model) if cfg.distill_teacher == "frozen" else unwrap(model)
    # after the teacher's copy: compiling changes the decoder's modules in place
    fast = fastpath.enable(model, cfg, env.device, say=print if env.main else lambda _: None)
    start, start_progress = 0, 0.0
    if cfg.resume and (ckpt := latest_checkpoint(out)) is not None:
        state = load_checkpoint(ckpt, model, optimizer)
        start = state["step"]
        # a resumed time-scheduled run decays over what is left of the schedule in its own budget
        start_progress = float(state.get("time_progress", 0.0)) if cfg.time_schedule else 0.0
    trainable = [p for p in model.parameters() if p.requires_grad]
    broadcast_trained(trainable, env)
    autocast = (
        (lambda: torch.autocast(env.device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    )
    logger = MetricsLogger(out, cfg, enabled=env.main, start_step=start)
    tokens_per_step = (
        cfg.batch_size * cfg.grad_accum * env.world * cfg.sequence_length if cfg.train_data else 0
    )
    history, valid = [], {}
    step_seconds = 0.0
    time_progress = start_progress
    finished = True

    def state(done: int) -> dict:
        extra = {"time_progress": time_progress} if cfg.time_schedule else {}
        return {"tokens": done * tokens_per_step, "world": env.world, **extra}

    model.train()
    for step in range(start, cfg.max_steps):
        stop = cfg.stop_at_step is not None and step >= cfg.stop_at_step
        if cfg.max_seconds is not None:
            elapsed = time.perf_counter() - started
            out_of_time, clock_progress = agree_on_clock(
                env, elapsed, elapsed + 2 * step_seconds, cfg.max_seconds, start_progress
            )
            stop = stop or out_of_time
            if cfg.time_schedule:
                time_progress = clock_progress
        if stop:
            finished = False
            if env.main and step > start:
                save_checkpoint(out, step, model, optimizer, state(step), cfg)
            break
        began = time.perf_counter()
        lr = learning_rate(cfg, step, time_progress)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        torch.manual_seed(cfg.seed * 1_000_003 + step)  # dropout: a pure function of the step
        rng = np.random.default_rng([cfg.seed, step, env.rank])  # segment breakpoints likewise
        substep_losses, distill_losses, qa_losses = [], [], []
        for micro in range(cfg.grad_accum):
            if len(train_rows):
                rows = batch_indices(
                    step,
                    micro,
                    cfg.grad_accum,
                    cfg.batch_size,
                    env.world,
                    env.rank,
                    len(train_rows),
                    cfg.seed,
                )
                batch = torch.from_numpy(np.asarray(train_rows[np.sort(rows)]).astype(np.int64)).to(
                    env.device
                )
                batch = with_repeats(batch, cfg, rng)
                lm, kl = lm_substeps(model, batch, cfg, rng, 1 / cfg.grad_accum, autocast, teacher, fast)
                substep_losses.append(lm)
                if kl:
                    distill_losses.append(kl)
            if qa is not None:
                examples = qa.batch(step, micro, cfg.grad_accum, cfg.qa_batch_size, env.world, env.rank)
                with fastpath.uncompiled():  # padded batches of varying shapes: not worth graphs
                    loss = qa_loss(model, tokenizer, examples, cfg, env.device, autocast)
                (loss * cfg.qa_loss_weight / cfg.grad_accum).backward()
                qa_losses.append(loss.detach())
        average_gradients(trainable, env)
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        metrics = {"step": step + 1, "lr": lr, "grad_norm": float(grad_norm)}
        logged = []  # the step's losses, averaged over the ranks
        if substep_losses:
            logged.append(torch.stack([torch.stack(m) for m in substep_losses]).float().mean(0))
        if distill_losses:
            logged.append(torch.stack([torch.stack(m) for m in distill_losses]).float().mean().reshape(1))
        if qa_losses:
            logged.append(torch.stack(qa_losses).float().mean().reshape(1))
        if logged and env.world > 1:
            flat = torch.cat(logged)
            dist.all_reduce(flat)
            logged = list((flat / env.world).split([len(t) for t in logged]))
        if substep_losses:
            per_substep = logged[0]
            metrics["loss"] = float(per_substep.mean())
            metrics.update({f"loss/substep{i}": float(v) for i, v in enumerate(per_substep)})
        if distill_losses:
            metrics["distill_kl"] = float(logged[1])
        if qa_losses:
            metrics["qa_loss"] = float(logged[-1])
        metrics["step_seconds"] = step_seconds = time.perf_counter() - began
        metrics["tokens_per_second"] = tokens_per_step / max(step_seconds, 1e-9)
        done = step + 1
        if (
            cfg.eval_every
            and (done % cfg.eval_every == 0 or done == cfg.max_steps)
            and len(valid_rows)
            and env.main
        ):
            with fastpath.uncompiled():
                valid = validate(model, valid_rows, cfg, env.device, autocast)
            metrics.update(valid)
        history.append(metrics)
        logger.log(metrics, force=done == cfg.max_steps or "valid/sequences" in metrics)
        if env.main and cfg.save_every and (done % cfg.save_every == 0 or done == cfg.max_steps):
            save_checkpoint(out, done, model, optimizer, state(done), cfg)
        for callback in callbacks:
            callback(done, metrics)
    logger.close()

    final = out / "final"
    if not finished:
        return TrainResult(out, final, step, history, valid, finished=False)
    if env.main:
        core = unwrap(model)
        meta = training_meta(cfg, cfg.max_steps, **({"data_parallel": env.world} if env.world > 1 else {}))
        if cfg.lora:
            save_adapter(model, final, meta)
        else:
            core.save_pretrained(final)
            tokenizer.save_pretrained(final)
            (final / "ragcompress.json").write_text(json.dumps(meta, indent=2))
    if env.world > 1:
        dist.barrier()
    return TrainResult(out, final, cfg.max_steps, history, valid)
