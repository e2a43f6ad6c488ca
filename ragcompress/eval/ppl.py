"""Perplexity with compressed context: the protocol of the AutoCompressors paper (Table 1).

For windows of ``(n + 1) × S`` tokens taken from inside single documents, measure the perplexity of the
final S-token segment given
  (a) no context,
  (b) the j preceding segments compressed into summary vectors (j = 1..n compression steps),
  (c) the same j segments as plain text (full attention),
and report for (b) the share of the full-context gain kept: (ppl_none − ppl_comp) / (ppl_none − ppl_full).
Every condition scores the same tokens: the final segment's tokens 2..S, each predicted inside it.

Each row also keeps the mean NLL of every window, and a result records a digest of its windows, so two
models measured on the same windows can be compared pairwise (`compare`: a paired bootstrap over windows).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ragcompress.data.documents import read_documents


@dataclass
class PPLRow:
    condition: str  # none | compressed | full
    context_segments: int
    nll: float
    ppl: float
    tokens: int
    window_nll: list[float] = field(default_factory=list)  # mean NLL of each window's scored tokens


@dataclass
class PPLResult:
    segment_length: int
    context_segments: int
    windows: int
    rows: list[PPLRow] = field(default_factory=list)
    gain_kept: dict[int, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    windows_sha256: str = ""  # of the token ids evaluated: equal digests mean the same windows
    window_sources: list[str] = field(default_factory=list)  # the data path each window came from, if known

    def row(self, condition: str, context_segments: int = 0) -> PPLRow:
        return next(
            r for r in self.rows if r.condition == condition and r.context_segments == context_segments
        )

    def gain_kept_by_source(self) -> dict[str, dict[int, float]]:
        """Gain kept over each source's windows alone, for 1..n compressed segments ({} if sources unknown)."""
        if not self.window_sources or not all(row.window_nll for row in self.rows):
            return {}
        return {source: self.subset(source).gain_kept for source in dict.fromkeys(self.window_sources)}

    def subset(self, source: str) -> PPLResult:
        """One source's windows as a result of their own (its digest is the whole result's, tagged)."""
        keep = [i for i, name in enumerate(self.window_sources) if name == source]
        rows = []
        for row in self.rows:
            nll = [row.window_nll[i] for i in keep]
            mean = float(np.mean(nll))
            tokens = row.tokens // self.windows * len(keep)  # every window scores the same number of tokens
            rows.append(PPLRow(row.condition, row.context_segments, mean, math.exp(mean), tokens, nll))
        part = PPLResult(
            self.segment_length,
            self.context_segments,
            len(keep),
            rows,
            meta=dict(self.meta),
            windows_sha256=f"{self.windows_sha256}:{source}",
            window_sources=[source] * len(keep),
        )
        part.fill_gain_kept()
        return part

    def fill_gain_kept(self) -> None:
        """``gain_kept`` for 1..n compressed segments, from the rows' mean NLLs."""
        for j in range(1, self.context_segments + 1):
            self.gain_kept[j] = _gain_kept(
                self.row("none").nll, self.row("compressed", j).nll, self.row("full", j).nll
            )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["gain_kept"] = {str(k): v for k, v in self.gain_kept.items()}
        by_source = self.gain_kept_by_source()
        if by_source:  # derived from window_sources and the per-window NLLs; written for readers of the file
            data["gain_kept_by_source"] = {
                s: {str(j): v for j, v in kept.items()} for s, kept in by_source.items()
            }
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> PPLResult:
        """Read a saved result (also those written before rows kept per-window NLLs)."""
        try:
            data = json.loads(Path(path).read_text())
            rows = [PPLRow(**row) for row in data["rows"]]
            return cls(
                segment_length=data["segment_length"],
                context_segments=data["context_segments"],
                windows=data["windows"],
                rows=rows,
                gain_kept={int(k): v for k, v in data.get("gain_kept", {}).items()},
                meta=data.get("meta", {}),
                windows_sha256=data.get("windows_sha256", ""),
                window_sources=data.get("window_sources", []),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}: not a saved PPL result ({exc}); write one with `ragcompress eval ppl --out`"
            ) from exc

    def table(self) -> str:
        lines = [
            f"final {self.segment_length}-token PPL over {self.windows} windows",
            f"{'context':<34}{'PPL':>10}{'gain kept':>12}",
        ]
        lines.append(f"{'none':<34}{self.row('none').ppl:>10.3f}{'':>12}")
        for j in range(1, self.context_segments + 1):
            kept_text = _percent_cell(self.gain_kept.get(j), 12)
            lines.append(
                f"{f'{j} segment(s) compressed ({j} step(s))':<34}{self.row('compressed', j).ppl:>10.3f}{kept_text}"
            )
            lines.append(f"{f'{j} segment(s) as plain text':<34}{self.row('full', j).ppl:>10.3f}{'':>12}")
        by_source = self.gain_kept_by_source()
        if len(by_source) > 1:
            counts = {s: self.window_sources.count(s) for s in by_source}
            segments = range(1, self.context_segments + 1)
            lines.append(
                f"{'gain kept by source':<26}{'windows':>8}" + "".join(f"{f'{j} seg':>10}" for j in segments)
            )
            for source, kept in by_source.items():
                cells = "".join(_percent_cell(kept[j], 10) for j in segments)
                lines.append(f"{source[:26]:<26}{counts[source]:>8}{cells}")
        return "\n".join(lines)


def _percent_cell(share: float | None, width: int) -> str:
    """``share`` as a right-aligned percentage ``width`` characters wide; ``n/a`` when None or not finite."""
    if share is None or not math.isfinite(share):
        return f"{'n/a':>{width}}"
    return f"{100 * share:>{width - 1}.1f}%"


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
    return labelled_windows(paths, tokenizer, window, max_windows, text_field, per_path)[0]


def labelled_windows(
    paths: list[str],
    tokenizer,
    window: int,
    max_windows: int,
    text_field: str = "text",
    per_path: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """`document_windows` and, for each window, the name of its source: `source_name` of its path, or the
    path as given where two paths would share a name."""
    short = [source_name(spec) for spec in paths]
    names = {spec: name if short.count(name) == 1 else str(spec) for spec, name in zip(paths, short)}
    windows, sources = [], []
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
                sources.append(names[spec])
                taken += 1
    if not windows:
        raise ValueError(
            f"{paths}: no document has {window} tokens; use fewer/shorter segments or longer texts"
        )
    return np.asarray(windows, dtype=np.int64), sources


_SPLITS = {"train", "validation", "test", "dev"}


def source_name(spec: str) -> str:
    """A data path's short name: `data/corpus/austen/test.jsonl` → `austen`, `notes/` → `notes`."""
    path = Path(str(spec).rstrip("/"))
    return path.parent.name if path.stem in _SPLITS and path.parent.name else path.name


def _final_nll(logits: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """Per window, the summed NLL of targets[:, 1:] from logits[:, :-1] (both cover the final segment)."""
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), targets[:, 1:], reduction="none"
    )
    return nll.sum(dim=1).tolist()


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
    sources: list[str] | None = None,
) -> PPLResult:
    """Run the three conditions over ``windows`` ([N, (n+1)·S] token ids).

    ``sources`` (one name per window, from `labelled_windows`) adds the gain kept per source.
    """
    S, n = segment_length, context_segments
    if windows.shape[1] != (n + 1) * S:
        raise ValueError(f"windows have {windows.shape[1]} tokens; expected (context_segments + 1) × {S}")
    if sources is not None and len(sources) != len(windows):
        raise ValueError(f"{len(sources)} sources for {len(windows)} windows; give one per window")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    bf16 = device.type == "cuda" if bf16 is None else bf16
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    model.eval()
    sums: dict[tuple[str, int], list[float]] = {}  # per window, summed NLL of its S - 1 scored tokens

    def add(key, window_sums):
        sums.setdefault(key, []).extend(window_sums)

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

    digest = hashlib.sha256(np.ascontiguousarray(windows, dtype=np.int64).tobytes()).hexdigest()
    result = PPLResult(
        segment_length=S,
        context_segments=n,
        windows=len(windows),
        windows_sha256=digest,
        window_sources=list(sources or []),
    )
    scored = S - 1
    for (condition, j), window_sums in sums.items():
        mean = sum(window_sums) / (scored * len(window_sums))
        per_window = [total / scored for total in window_sums]
        result.rows.append(PPLRow(condition, j, mean, math.exp(mean), scored * len(window_sums), per_window))
    result.fill_gain_kept()
    return result


def _gain_kept(none_nll, compressed_nll, full_nll):
    """(ppl_none − ppl_comp) / (ppl_none − ppl_full) from mean NLLs; NaN where text context does not help.

    Works on floats and, elementwise, on numpy arrays (the bootstrap's resampled means).
    """
    none, comp, full = np.exp(none_nll), np.exp(compressed_nll), np.exp(full_nll)
    gain = none - full
    kept = np.where(gain > 0, (none - comp) / np.where(gain > 0, gain, 1.0), np.nan)
    return float(kept) if np.ndim(kept) == 0 else kept


def compare(
    a: PPLResult,
    b: PPLResult,
    context_segments: int = 1,
    samples: int = 10000,
    seed: int = 0,
    names: tuple[str, str] = ("a", "b"),
) -> dict:
    """Paired bootstrap over windows: how much more of the gain ``b`` keeps than ``a``, with a 95 % interval.

    Both results must come from the same windows (equal digests) and carry per-window NLLs. Windows are
    resampled with replacement; each sample recomputes both models' gain kept from its mean NLLs, so the
    interval accounts for the windows shared by both models. Also reported: the difference in nats per
    token saved by the compressed context (none − compressed), b − a, with its interval. ``names`` name
    the two results in error messages (e.g. their files).
    """
    j = context_segments
    for name, result in zip(names, (a, b)):
        if not result.windows_sha256 or not all(row.window_nll for row in result.rows):
            raise ValueError(
                f"{name}: no per-window NLLs (saved before they were recorded); evaluate it again"
            )
        if not 1 <= j <= result.context_segments:
            raise ValueError(f"context_segments={j}: {name} has 1..{result.context_segments}")
    if a.windows_sha256 != b.windows_sha256:
        raise ValueError("the two results were measured on different windows; evaluate both on the same data")

    def arrays(result):
        return tuple(
            np.asarray(result.row(c, k).window_nll) for c, k in (("none", 0), ("compressed", j), ("full", j))
        )

    na, ca, fa = arrays(a)
    nb, cb, fb = arrays(b)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(na), size=(samples, len(na)))
    saved = (nb - cb) - (na - ca)
    saved_boot = saved[idx].mean(1)
    point_a = _gain_kept(na.mean(), ca.mean(), fa.mean())
    point_b = _gain_kept(nb.mean(), cb.mean(), fb.mean())
    result = {
        "context_segments": j,
        "windows": len(na),
        "gain_kept_a": point_a,
        "gain_kept_b": point_b,
        "gain_kept_diff": point_b - point_a,
        "gain_kept_diff_ci95": None,  # undefined where plain-text context does not lower the PPL
        "share_b_better": None,
        "nats_saved_diff": float(saved.mean()),
        "nats_saved_diff_ci95": [
            float(np.percentile(saved_boot, 2.5)),
            float(np.percentile(saved_boot, 97.5)),
        ],
        "windows_b_saves_more": int((saved > 0).sum()),
        "samples": samples,
    }
    if math.isfinite(point_a) and math.isfinite(point_b):
        kept_a = _gain_kept(na[idx].mean(1), ca[idx].mean(1), fa[idx].mean(1))
        kept_b = _gain_kept(nb[idx].mean(1), cb[idx].mean(1), fb[idx].mean(1))
        diff = (kept_b - kept_a)[np.isfinite(kept_b - kept_a)]
        if diff.size:
            result["gain_kept_diff_ci95"] = [
                float(np.percentile(diff, 2.5)),
                float(np.percentile(diff, 97.5)),
            ]
            result["share_b_better"] = float(np.mean(diff > 0))
    sources = list(dict.fromkeys(a.window_sources))
    if len(sources) > 1 and a.window_sources == b.window_sources:  # the same comparison within each source
        result["by_source"] = {
            source: compare(a.subset(source), b.subset(source), j, samples, seed, names) for source in sources
        }
    return result
