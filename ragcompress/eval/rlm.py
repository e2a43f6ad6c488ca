"""Retrieval-augmented language modelling through the product (the AutoCompressors paper's Table 5).

    index_corpus(corpus)  ─▶  for every held-out window: context ─▶ Retriever.score(target, context, mode, k)

Held-out documents (never in the index) are cut into windows of ``context_tokens`` + ``target_tokens``
tokens. The context is the retrieval query and is read as text; the target's tokens are scored. Modes:

* ``none``: the context alone (the baseline every gain is measured against);
* ``text``: the k retrieved passages as plain text before the context;
* ``replug``: one pass per passage (as text), per-token probabilities mixed by softmax(retrieval scores);
* ``fused``: the k passages' summary vectors, concatenated, as one soft prompt;
* ``fused-rerank``: as ``fused``, after re-ranking 2k retrieved passages by the summary vectors
  (``Retriever.rerank``, method ``summary_l2``) and keeping the best k.

Each row reports the mean NLL per target token, its perplexity, the gain over ``none`` in nats per token
and as a share of the none perplexity, and examples scored per second (model time, this machine). With
``smoothing`` = s every retrieval mode's token probabilities are mixed with the no-retrieval ones,
(1 − s)·p + s·p_none, as the paper did with s = ½. Each row keeps every window's NLL, so two runs on
the same windows (equal ``windows_sha256``) can be compared pairwise.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from indexing.pipeline import IndexingError, index_corpus
from ragcompress.retrieval import Retriever
from ragcompress.store import StoreError
from ragcompress.store.fsutil import sha256_file

RLM_MODES = ("none", "text", "replug", "fused", "fused-rerank")
TEXT_SUFFIXES = (".txt", ".md", ".rst")


class RLMEvalError(ValueError):
    """Input or settings the evaluation cannot use, as one line naming the file or option at fault."""


@dataclass(frozen=True)
class Window:
    """One scored example: ``context`` (read, and the retrieval query) then ``target`` (scored)."""

    doc_id: str
    context: str
    target: str


@dataclass
class RLMRow:
    mode: str
    k: int
    nll: float  # mean NLL per target token (nats)
    ppl: float
    gain_nats: float  # none's NLL minus this row's: > 0 means retrieval helped
    ppl_reduction: float  # 1 − ppl / ppl_none
    examples_per_s: float
    tokens: int
    window_nll: list[float] = field(default_factory=list)


@dataclass
class RLMResult:
    rows: list[RLMRow]
    meta: dict

    def row(self, mode: str, k: int) -> RLMRow:
        return next(r for r in self.rows if r.mode == mode and (mode == "none" or r.k == k))

    def to_dict(self) -> dict:
        return {"rows": [asdict(r) for r in self.rows], "meta": self.meta}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> RLMResult:
        data = json.loads(Path(path).read_text())
        return cls([RLMRow(**row) for row in data["rows"]], data["meta"])

    def markdown(self) -> str:
        meta = self.meta
        lines = [
            f"Retrieval-augmented LM: {meta['windows']} held-out windows of {meta['context_tokens']} context "
            f"+ {meta['target_tokens']} target tokens; smoothing {meta['smoothing']}",
            "",
            "| mode | k | NLL / token | PPL | gain (nats) | PPL reduction | examples/s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            k = "–" if r.mode == "none" else str(r.k)
            lines.append(
                f"| {r.mode} | {k} | {r.nll:.4f} | {r.ppl:.3f} | {r.gain_nats:+.4f} | "
                f"{100 * r.ppl_reduction:+.2f} % | {r.examples_per_s:.2f} |"
            )
        return "\n".join(lines)


def parse_modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in RLM_MODES]
    if unknown or not modes:
        raise RLMEvalError(f"--modes: {(unknown or [text])[0]!r} is not one of {', '.join(RLM_MODES)}")
    return ["none"] + [m for m in dict.fromkeys(modes) if m != "none"]


def read_texts(path: Path) -> dict[str, str]:
    """Held-out documents: a folder of .txt/.md/.rst files (doc id = relative path without suffix) or
    one such file."""
    path = Path(path)
    if path.is_file():
        files = [path]
        root = path.parent
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        root = path
    else:
        raise RLMEvalError(f"{path}: no such file or folder of held-out texts")
    if not files:
        raise RLMEvalError(f"{path}: holds no {'/'.join(TEXT_SUFFIXES)} file to evaluate on")
    texts = {}
    for file in files:
        try:
            texts[str(file.relative_to(root).with_suffix(""))] = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RLMEvalError(f"{file}: cannot be read as UTF-8 text ({exc})") from None
    return texts


def make_windows(
    texts: dict[str, str],
    tokenizer,
    context_tokens: int = 128,
    target_tokens: int = 128,
    per_doc: int = 1,
    limit: int | None = None,
) -> list[Window]:
    """Consecutive, non-overlapping windows from the start of each document (at most ``per_doc`` each,
    ``limit`` in all), decoded back to text so the Retriever reads them as a user's text."""
    if context_tokens < 1 or target_tokens < 2:
        raise RLMEvalError("--context-tokens must be ≥ 1 and --target-tokens ≥ 2")
    size = context_tokens + target_tokens
    windows = []
    for doc_id, text in sorted(texts.items()):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for start in range(0, min(len(ids) // size, per_doc) * size, size):
            context = tokenizer.decode(ids[start : start + context_tokens])
            target = tokenizer.decode(ids[start + context_tokens : start + size])
            if context.strip() and target.strip():
                windows.append(Window(doc_id, context, target))
        if limit is not None and len(windows) >= limit:
            return windows[:limit]
    return windows


def windows_digest(windows: Sequence[Window]) -> str:
    digest = hashlib.sha256()
    for w in windows:
        digest.update(json.dumps([w.doc_id, w.context, w.target]).encode())
    return digest.hexdigest()


def score_windows(
    retriever,
    windows: Sequence[Window],
    mode: str,
    k: int,
    smoothing: float | None,
) -> tuple[list[float], int, float]:
    """Mean NLL per token of every window's target, the number of tokens scored, and the seconds spent."""
    rerank = "summary_l2" if mode == "fused-rerank" else None
    plain = "fused" if mode == "fused-rerank" else mode
    nlls, tokens = [], 0
    started = time.perf_counter()
    for w in windows:
        result = retriever.score(
            w.target,
            w.context,
            mode=plain,
            k=k,
            smoothing=None if plain == "none" else smoothing,
            rerank=rerank,
            rerank_candidates=2 * k if rerank else None,
        )
        nlls.append(-result.mean)
        tokens += len(result.token_logprobs)
    return nlls, tokens, time.perf_counter() - started


def evaluate_rlm(
    retriever,
    windows: Sequence[Window],
    ks: Sequence[int],
    modes: Sequence[str],
    smoothing: float | None = 0.5,
    log: Callable[[str], None] = lambda line: None,
    meta: dict | None = None,
) -> RLMResult:
    """Score every window in every (mode, k); ``none`` once. Rows: none first, then per k and mode."""
    if not windows:
        raise RLMEvalError(
            "no held-out window: the texts are shorter than --context-tokens + --target-tokens"
        )
    none_nll, none_tokens, none_s = score_windows(retriever, windows, "none", 0, None)
    base = _mean(none_nll)
    rows = [_row("none", 0, none_nll, none_tokens, none_s, base)]
    log(f"none: NLL {base:.4f} ({len(windows)} windows, {none_s:.1f} s)")
    for k in ks:
        for mode in modes:
            if mode == "none":
                continue
            nlls, tokens, seconds = score_windows(retriever, windows, mode, k, smoothing)
            rows.append(_row(mode, k, nlls, tokens, seconds, base))
            log(f"{mode} k={k}: NLL {rows[-1].nll:.4f} (gain {rows[-1].gain_nats:+.4f}, {seconds:.1f} s)")
    info = dict(meta or {})
    info.update(
        windows=len(windows),
        documents=len({w.doc_id for w in windows}),
        smoothing=smoothing,
        ks=list(ks),
        modes=list(modes),
        windows_sha256=windows_digest(windows),
    )
    return RLMResult(rows, info)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _row(mode: str, k: int, nlls: list[float], tokens: int, seconds: float, base: float) -> RLMRow:
    nll = _mean(nlls)
    return RLMRow(
        mode=mode,
        k=k,
        nll=nll,
        ppl=math.exp(nll),
        gain_nats=base - nll,
        ppl_reduction=1.0 - math.exp(nll - base),
        examples_per_s=len(nlls) / seconds if seconds > 0 else float("inf"),
        tokens=tokens,
        window_nll=nlls,
    )


def plot(result: RLMResult, path: Path) -> Path:
    """PPL vs k per mode, the none baseline as a line (matplotlib: the ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'ragcompress[plot]'") from None
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for mode in result.meta["modes"]:
        if mode == "none":
            continue
        rows = sorted((r for r in result.rows if r.mode == mode), key=lambda r: r.k)
        ax.plot([r.k for r in rows], [r.ppl for r in rows], marker="o", label=mode)
    ax.axhline(result.row("none", 0).ppl, color="grey", linestyle="--", label="none (no retrieval)")
    ax.set_xlabel("passages retrieved (k)")
    ax.set_ylabel("perplexity of the target tokens")
    ax.set_title(f"Retrieval-augmented LM, {result.meta['windows']} held-out windows")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def save_report(result: RLMResult, out: Path) -> list[Path]:
    """``out`` = X.json (also X.md, X.png) or a folder (rlm.json, rlm.md, rlm.png)."""
    out = Path(out)
    if out.suffix != ".json":
        out.mkdir(parents=True, exist_ok=True)
        out = out / "rlm.json"
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    markdown = out.with_suffix(".md")
    markdown.write_text(result.markdown() + "\n")
    return [out, markdown, plot(result, out.with_suffix(".png"))]


def check_held_out(corpus: Path, texts: Path) -> None:
    """Refuse held-out texts that are also in the indexed corpus (byte-identical files): the index
    would hand back the very text being scored."""

    def digests(path: Path) -> dict[str, Path]:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        return {sha256_file(p): p for p in files}

    indexed = digests(corpus)
    for digest, file in digests(texts).items():
        if digest in indexed:
            raise RLMEvalError(
                f"{file}: the same file is in the corpus ({indexed[digest]}); held-out texts must not be indexed"
            )


def run_rlm(
    corpus: Path,
    texts: Path,
    index: Path,
    ks: Sequence[int],
    modes: Sequence[str],
    model: str = "default",
    embedder: str = "default",
    chunk_tokens: int = 512,
    overlap: int = 64,
    vector_dtype: str = "fp16",
    context_tokens: int = 128,
    target_tokens: int = 128,
    per_doc: int = 1,
    limit: int | None = None,
    smoothing: float | None = 0.5,
    device: str | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> RLMResult:
    """Index ``corpus`` (or bring ``index`` up to date), then score the held-out windows of ``texts``."""
    corpus, texts = Path(corpus), Path(texts)
    if not corpus.is_dir():
        raise RLMEvalError(f"{corpus}: not a folder; the corpus to index must be a folder of documents")
    held_out = read_texts(texts)
    check_held_out(corpus, texts)
    try:
        report = index_corpus(
            corpus,
            index,
            model=None if model == "default" else model,
            embedder=None if embedder == "default" else embedder,
            chunk_tokens=chunk_tokens,
            overlap=overlap,
            vector_dtype=vector_dtype,
            device=device,
            progress=False,
        )
    except (IndexingError, StoreError) as exc:
        raise RLMEvalError(str(exc)) from None
    log(f"index {index}: {report}")
    with Retriever(index, device=device) as retriever:
        windows = make_windows(held_out, retriever.tokenizer, context_tokens, target_tokens, per_doc, limit)
        meta = {
            "corpus": str(corpus),
            "texts": str(texts),
            "model": model,
            "embedder": embedder,
            "chunk_tokens": chunk_tokens,
            "overlap": overlap,
            "vector_dtype": vector_dtype,
            "context_tokens": context_tokens,
            "target_tokens": target_tokens,
            "device": str(retriever.device),
        }
        return evaluate_rlm(retriever, windows, ks, modes, smoothing, log, meta)
