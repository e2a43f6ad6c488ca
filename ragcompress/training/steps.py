"""What one training step computes: the language-modelling substeps, the fused-QA loss, validation.

All three call the model's own segment loop (``model(..., segment_lengths=..., softprompt=...)``);
nothing here re-implements segment handling.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from ragcompress.modeling import unwrap
from ragcompress.prompting import answer_ids, join_passages, question_prompt_ids
from ragcompress.training.segmenting import fixed_segments, random_segments, segment_bounds_for


def substep_lengths(cfg, core, rng: np.random.Generator | None) -> list[int]:
    """Segment lengths of one substep: random breakpoints in training, fixed ones otherwise."""
    total, count = cfg.substep_length, cfg.segments_per_substep
    if rng is None or not cfg.randomize_segments or count == 1:
        return fixed_segments(total, count)
    kappa = core.config.summary_length
    slots = kappa * (count * cfg.training_substeps - 1) if core.config.accumulate_summary else kappa
    low, high = segment_bounds_for(
        total,
        count,
        cfg.shortest_segment,
        getattr(core.config, "max_position_embeddings", None),
        slots,
        kappa,
        core.position_style,
    )
    return random_segments(total, count, low, high, rng)


def with_repeats(batch: torch.Tensor, cfg, rng: np.random.Generator) -> torch.Tensor:
    """Turn a ``repeat_fraction`` share of rows into repeats: each substep becomes ``[x ; x]``."""
    if not cfg.repeat_fraction:
        return batch
    rows = torch.from_numpy(rng.random(batch.shape[0]) < cfg.repeat_fraction).to(batch.device)
    if not rows.any():
        return batch
    half = cfg.substep_length // 2
    out = batch.clone()
    for s in range(cfg.training_substeps):
        start = s * cfg.substep_length
        first = out[rows, start : start + half]
        out[rows, start + half : start + 2 * half] = first
    return out


def distill_kl(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(teacher ‖ student), both ``[batch, positions, vocab]`` logits."""
    vocab = student.shape[-1]
    return torch.nn.functional.kl_div(
        student.float().log_softmax(-1).reshape(-1, vocab),
        teacher.float().log_softmax(-1).reshape(-1, vocab),
        log_target=True,
        reduction="batchmean",
    )


def lm_substeps(
    model, batch: torch.Tensor, cfg, rng, scale: float, autocast, teacher=None, forward=None
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Forward and backward over the substeps of a batch of packed sequences; returns detached losses.

    With ``stop_gradient`` each substep is back-propagated as soon as it ends and the soft prompt is
    detached before the next one (truncated BPTT after ``segments_per_substep`` compression steps), so
    activation memory holds one substep at a time. Gradients only accumulate here; the trainer averages
    them over the ranks once per optimizer step.

    With ``distill_weight``, ``teacher`` (the trainer passes a frozen copy of the model as training
    started) first reads each whole sequence as plain text, and every substep adds ``distill_weight`` ×
    KL(text ‖ compressed) over the tokens it predicts after summary vectors: distillation towards what
    the context gives as text, a dense target for exactly the gain that compression should keep. The
    first segment of the sequence has no context in either reading and is left out. A frozen teacher is
    the default because one sharing the trained weights (``distill_teacher=self``) can also lower the
    KL by reading text worse.

    ``forward`` replaces the model's own segment loop for the substeps (the trainer passes the fast
    path's `fastpath.FastSegmentLoop`, which computes the same outputs with padded, repeating shapes).

    Returns the language-modelling losses of the substeps and (with ``distill_weight``) their KL terms.
    """
    core = unwrap(model)
    forward = forward or model
    n = cfg.training_substeps
    length = cfg.substep_length

    reference = None
    if cfg.distill_weight:
        if teacher is None:
            raise ValueError("distill_weight > 0 needs a teacher model (the trainer passes a frozen copy)")
        with torch.no_grad(), autocast():
            reference = teacher(input_ids=batch, use_cache=False).logits

    softprompt, total, losses, kls = None, None, [], []
    for s in range(n):
        piece = batch[:, s * length : (s + 1) * length]
        lengths = substep_lengths(cfg, core, rng)
        last = s == n - 1
        with autocast():
            out = forward(
                input_ids=piece,
                labels=piece,
                segment_lengths=lengths,
                softprompt=softprompt,
                output_softprompt=not last,
                use_cache=False,
            )
        losses.append(out.loss.detach())
        loss = out.loss
        if reference is not None:
            first = lengths[0] if s == 0 else 0  # tokens read after at least one segment's vectors
            kl = distill_kl(out.logits[:, first:], reference[:, s * length + first : (s + 1) * length])
            kls.append(kl.detach())
            loss = loss + cfg.distill_weight * kl
        if cfg.stop_gradient:
            (loss * scale / n).backward()
            softprompt = None if last else out.softprompt.detach()
        else:
            total = loss if total is None else total + loss
            softprompt = out.softprompt
    if not cfg.stop_gradient:
        (total * scale / n).backward()
    return losses, kls


def _pad_right(tokenizer, rows: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows`` right-padded to the longest, and their attention mask (the trainer gives the tokenizer
    a pad token, EOS, when it has none: padded positions are masked, so its value never counts)."""
    batch = tokenizer.pad({"input_ids": rows}, padding=True, padding_side="right", return_tensors="pt")
    return batch["input_ids"].to(device), batch["attention_mask"].to(device)


def qa_loss(model, tokenizer, examples: list[dict], cfg, device, autocast) -> torch.Tensor:
    """Answer loss of fused-QA examples: [summary vectors of k passages ; question] → short answer.

    The passages are compressed in the same graph, so the answer loss also teaches the compressor what
    to keep. Examples with ``text_mode`` read the passages as plain text instead (keeps that mode sharp).
    The loss is the mean over examples of each answer's mean token loss: every question weighs the same
    whatever its answer's length, and the mean of the ranks' losses equals the loss of their whole batch.
    """
    core = unwrap(model)
    losses = []
    for text_mode in (False, True):
        group = [e for e in examples if bool(e.get("text_mode")) == text_mode]
        if not group:
            continue
        softprompt = None
        if not text_mode:
            k = len(group[0]["passages"])
            passages = [p for e in group for p in e["passages"]]
            encoded = tokenizer(
                passages, add_special_tokens=False, truncation=True, max_length=cfg.qa_passage_tokens
            )
            ids, mask = _pad_right(tokenizer, encoded["input_ids"], device)
            with autocast():
                compressed = model(
                    input_ids=ids,
                    attention_mask=mask,
                    output_softprompt=True,
                    use_cache=False,
                    logits_to_keep=1,
                ).softprompt
            kappa = core.config.summary_length
            softprompt = compressed.reshape(len(group), k * kappa, -1)
        rows, label_rows = [], []
        for e in group:
            context = join_passages(e["passages"]) if text_mode else None
            prompt = question_prompt_ids(tokenizer, e["question"], context)
            target = answer_ids(tokenizer, e["answer"])
            rows.append(prompt + target)
            label_rows.append([-100] * len(prompt) + target)
        ids, mask = _pad_right(tokenizer, rows, device)
        labels = torch.full_like(ids, -100)
        for i, row in enumerate(label_rows):
            labels[i, : len(row)] = torch.tensor(row)
        with autocast():
            logits = model(input_ids=ids, attention_mask=mask, softprompt=softprompt, use_cache=False).logits
        gold = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), gold, ignore_index=-100, reduction="none"
        )
        losses.append((nll.sum(1) / (gold != -100).sum(1).clamp(min=1)).sum())
    return sum(losses) / len(examples)


def _segment_token_stats(logits: torch.Tensor, targets: torch.Tensor, start: int, end: int, offset: int = 0):
    """NLL and correctness of tokens start+1..end-1, each predicted inside its own segment.

    ``offset`` is the sequence position of ``logits``' first column (segments run on their own start at
    their segment's start).
    """
    pred = logits[:, start - offset : end - 1 - offset].float()
    gold = targets[:, start + 1 : end]
    nll = torch.nn.functional.cross_entropy(pred.transpose(1, 2), gold, reduction="none")
    correct = (pred.argmax(-1) == gold).float()
    return nll.sum().item(), correct.sum().item(), gold.numel()


@torch.no_grad()
def validate(model, sequences: np.ndarray, cfg, device, autocast, batch_size: int | None = None) -> dict:
    """Per-segment NLL and accuracy on validation sequences, with and without summary vectors.

    Segments are fixed-length here so runs compare. "without" reads every segment on its own; "with"
    reads it after the summary vectors of the segments before it (within the whole sequence: in
    evaluation nothing is detached). Each token is predicted inside its own segment in both modes.
    """
    was_training = model.training
    model.eval()
    batch_size = batch_size or cfg.batch_size
    lengths = fixed_segments(cfg.substep_length, cfg.segments_per_substep) * cfg.training_substeps
    bounds = np.cumsum([0] + lengths)
    sums = defaultdict(float)
    try:
        for first in range(0, len(sequences), batch_size):
            batch = torch.from_numpy(np.asarray(sequences[first : first + batch_size]).astype(np.int64)).to(
                device
            )
            with autocast():
                logits = model(input_ids=batch, segment_lengths=lengths).logits
            for j in range(len(lengths)):
                a, b = int(bounds[j]), int(bounds[j + 1])
                with autocast():
                    alone = model(input_ids=batch[:, a:b]).logits
                for mode, source, offset in (("with", logits, 0), ("without", alone, a)):
                    nll, correct, count = _segment_token_stats(source, batch, a, b, offset)
                    sums[f"{mode}/seg{j}/nll"] += nll
                    sums[f"{mode}/seg{j}/acc"] += correct
                    sums[f"{mode}/seg{j}/n"] += count
    finally:
        model.train(was_training)
    metrics = {}
    for mode in ("with", "without"):
        total_nll = total_n = 0.0
        for j in range(len(lengths)):
            n = sums[f"{mode}/seg{j}/n"]
            if n:
                metrics[f"valid/{mode}_summary/seg{j}_nll"] = sums[f"{mode}/seg{j}/nll"] / n
                metrics[f"valid/{mode}_summary/seg{j}_acc"] = sums[f"{mode}/seg{j}/acc"] / n
            total_nll += sums[f"{mode}/seg{j}/nll"]
            total_n += n
        metrics[f"valid/{mode}_summary/nll"] = total_nll / max(total_n, 1)
    metrics["valid/sequences"] = float(len(sequences))
    return metrics
