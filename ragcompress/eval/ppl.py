"""Perplexity with compressed context: the protocol of the AutoCompressors paper (Table 1).

For windows of ``(n + 1) × S`` tokens taken from inside single documents, measure the perplexity of the
final S-token segment given
  (a) no context,
  (b) the j preceding segments compressed into summary vectors (j = 1..n compression steps),
  (c) the same j segments as plain text (full attention),
and report for (b) the share of the full-context gain kept: (ppl_none − ppl_comp) / (ppl_none − ppl_full).
Every condition scores the same tokens: the final segment's tokens 2..S, each predicted inside it.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ragcompress.training.data import read_documents


@dataclass
class PPLRow:
    condition: str  # none | compressed | full
    context_segments: int
    nll: float
    ppl: float
    tokens: int


@dataclass
class PPLResult:
    segment_length: int
    context_segments: int
    windows: int
    rows: list[PPLRow] = field(default_factory=list)
    gain_kept: dict[int, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def row(self, condition: str, context_segments: int = 0) -> PPLRow:
        return next(
            r for r in self.rows if r.condition == condition and r.context_segments == context_segments
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["gain_kept"] = {str(k): v for k, v in self.gain_kept.items()}
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def table(self) -> str:
        lines = [
            f"final {self.segment_length}-token PPL over {self.windows} windows",
            f"{'context':<34}{'PPL':>10}{'gain kept':>12}",
        ]
        lines.append(f"{'none':<34}{self.row('none').ppl:>10.3f}{'':>12}")
        for j in range(1, self.context_segments + 1):
            kept = self.gain_kept.get(j)
            kept_text = (
                f"{100 * kept:>11.1f}%" if kept is not None and math.isfinite(kept) else f"{'n/a':>12}"
            )
            lines.append(
                f"{f'{j} segment(s) compressed ({j} step(s))':<34}{self.row('compressed', j).ppl:>10.3f}{kept_text}"
            )
            lines.append(f"{f'{j} segment(s) as plain text':<34}{self.row('full', j).ppl:>10.3f}{'':>12}")
        return "\n".join(lines)


def document_windows(
    paths: list[str],
    tokenizer,
    window: int,
    max_windows: int,
    text_field: str = "text",
    per_path: int | None = None,
) -> np.ndarray:
    """Non-overlapping ``window``-token spans, each from inside one document.

    ``per_path`` caps the windows taken from each data path, so one long source cannot dominate.
    """
    windows = []
    for spec in paths:
        taken = 0
        for doc in read_documents(spec, text_field):
            ids = (
                doc.input_ids
                if doc.input_ids is not None
                else tokenizer(doc.text, add_special_tokens=False)["input_ids"]
            )
            for start in range(0, len(ids) - window + 1, window):
                if len(windows) >= max_windows or (per_path is not None and taken >= per_path):
                    break
                windows.append(ids[start : start + window])
                taken += 1
    if not windows:
        raise ValueError(
            f"{paths}: no document has {window} tokens; use fewer/shorter segments or longer texts"
        )
    return np.asarray(windows, dtype=np.int64)


def _final_nll(logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    """Summed NLL of targets[:, 1:] from logits[:, :-1] (both cover exactly the final segment)."""
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), targets[:, 1:], reduction="sum"
    )
    return nll.item(), targets[:, 1:].numel()


@torch.no_grad()
def evaluate_ppl(
    model,
    windows: np.ndarray,
    segment_length: int,
    context_segments: int,
    batch_size: int = 4,
    device=None,
    bf16: bool | None = None,
    progress=None,
) -> PPLResult:
    """Run the three conditions over ``windows`` ([N, (n+1)·S] token ids)."""
    S, n = segment_length, context_segments
    if windows.shape[1] != (n + 1) * S:
        raise ValueError(f"windows have {windows.shape[1]} tokens; expected (context_segments + 1) × {S}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    bf16 = device.type == "cuda" if bf16 is None else bf16
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    model.eval()
    sums: dict[tuple[str, int], list[float]] = {}

    def add(key, nll_tokens):
        total = sums.setdefault(key, [0.0, 0])
        total[0] += nll_tokens[0]
        total[1] += nll_tokens[1]

    for first in range(0, len(windows), batch_size):
        batch = torch.from_numpy(windows[first : first + batch_size]).to(device)
        final = batch[:, n * S :]
        with autocast():
            add(("none", 0), _final_nll(model(input_ids=final).logits, final))
            for j in range(1, n + 1):
                span = batch[:, (n - j) * S :]
                compressed = model(input_ids=span, segment_lengths=[S] * (j + 1), logits_to_keep=S).logits
                add(("compressed", j), _final_nll(compressed, final))
                full = model(input_ids=span, logits_to_keep=S).logits
                add(("full", j), _final_nll(full, final))
        if progress is not None:
            progress(len(batch))

    result = PPLResult(segment_length=S, context_segments=n, windows=len(windows))
    for (condition, j), (nll, tokens) in sums.items():
        mean = nll / tokens
        result.rows.append(PPLRow(condition, j, mean, math.exp(mean), tokens))
    none = result.row("none").ppl
    for j in range(1, n + 1):
        gain = none - result.row("full", j).ppl
        result.gain_kept[j] = (none - result.row("compressed", j).ppl) / gain if gain > 0 else float("nan")
    return result
