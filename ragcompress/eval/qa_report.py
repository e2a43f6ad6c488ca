"""What ``ragcompress eval qa`` writes: JSON, a markdown table and PNG plots of a sweep of QA runs.

Given ``--out X.json`` (or ``--out DIR``, read as ``DIR/qa.json``) and the runs of eval/index_qa.py:

* ``X.json``: one run in the QAResult format (so ``eval compare`` reads it) — the first vector dtype at
  the largest k — plus ``runs``, every run's settings and scores;
* ``X-<dtype>-k<k>.json``: every run in full, when there is more than one;
* ``X.md``: the tables; ``X-vs-k.png`` (several k) and ``X-vs-dtype.png`` (several dtypes).

matplotlib is an optional dependency (``pip install ragcompress[plot]``); it is imported only to plot.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ragcompress.eval.qa import QAResult

COLUMNS = (("em", "EM"), ("f1", "F1"), ("contains", "contains"))
TITLES = {"em": "Exact match", "f1": "Token F1"}


def output_base(out: Path) -> Path:
    """``X.json`` → ``X``; a folder → ``folder/qa``."""
    return out.with_suffix("") if out.suffix == ".json" else out / "qa"


def primary(results: Sequence[QAResult]) -> QAResult:
    """The run that stands for the sweep: the first dtype asked for, at its largest k."""
    dtype = results[0].meta["vector_dtype"]
    return max((r for r in results if r.meta["vector_dtype"] == dtype), key=lambda r: r.k)


def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(results: Sequence[QAResult]) -> str:
    """Per run and mode: EM, F1, containment, recall@k, seconds per question; then EM by answer kind."""
    meta = results[0].meta
    index = meta["index"]
    sizes = {r.meta["vector_dtype"]: r.meta["index"]["bytes_per_token"] for r in results}
    lines = [
        f"# QA through the index: {meta['questions_file']}",
        "",
        f"{meta['questions']} questions over `{meta['corpus']}` ({index['documents']} documents, "
        f"{index['chunks']} chunks of ≤ {meta['chunk_tokens']} tokens, overlap {meta['overlap']}); "
        f"compressor `{meta['model']}`, embedder `{meta['embedder']}`, faiss {meta['faiss']}, "
        f"answers of ≤ {meta['max_new_tokens']} tokens. Summary-vector bytes per text token: "
        + ", ".join(f"{d} {b:.1f}" for d, b in sizes.items())
        + ".",
        "",
        "Recall@k: share of questions with a chunk of a gold document among the k retrieved. "
        "Contains: the answer occurs in the generated text. Mode `none` reads no index.",
        "",
        "| vectors | k | mode | EM | F1 | contains | recall@k | s/question | n |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for mode, s in r.scores.items():
            cells = " | ".join(_fmt(s.get(key)) for key, _ in COLUMNS)
            lines.append(
                f"| {r.meta['vector_dtype']} | {r.k} | {mode} | {cells} | {_fmt(s.get('recall_at_k'))} "
                f"| {_fmt(s.get('seconds_per_question'), 2)} | {s['n']} |"
            )
    kinds = list(dict.fromkeys(k for r in results for by in r.scores_by_kind.values() for k in by))
    if kinds:
        counts = {
            k: next(by[k]["n"] for r in results for by in r.scores_by_kind.values() if k in by) for k in kinds
        }
        source = "the data's `kind` field" if meta.get("kind_source") == "data" else "the form of the answer"
        lines += [
            "",
            f"EM by answer kind (kinds from {source}):",
            "",
            "| vectors | k | mode | " + " | ".join(f"{k} (n={counts[k]})" for k in kinds) + " |",
            "|---|---:|---|" + "---:|" * len(kinds),
        ]
        for r in results:
            for mode, by in r.scores_by_kind.items():
                cells = " | ".join(_fmt(by[k]["em"]) if k in by else "–" for k in kinds)
                lines.append(f"| {r.meta['vector_dtype']} | {r.k} | {mode} | {cells} |")
    return "\n".join(lines) + "\n"


def _summary(result: QAResult, file: str | None) -> dict:
    keep = {k: v for k, v in result.meta.items() if k != "gold_rank"}
    return {
        "file": file,
        **keep,
        "recall_at_k": result.recall_at_k,
        "scores": result.scores,
        "scores_by_kind": result.scores_by_kind,
    }


def save_report(results: Sequence[QAResult], out: Path) -> list[Path]:
    """Write the JSON files, the markdown table and the plots; return every path written."""
    base = output_base(out)
    base.parent.mkdir(parents=True, exist_ok=True)
    written, files = [], {}
    if len(results) > 1:
        for r in results:
            path = base.with_name(f"{base.name}-{r.meta['vector_dtype']}-k{r.k}.json")
            r.save(path)
            files[id(r)] = path.name
            written.append(path)
    main = primary(results)
    payload = asdict(main) | {"runs": [_summary(r, files.get(id(r))) for r in results]}
    path = base.with_suffix(".json")
    path.write_text(json.dumps(payload, indent=2) + "\n")
    md = base.with_suffix(".md")
    md.write_text(markdown(results))
    written += [path, md]
    if len({r.k for r in results}) > 1:
        written.append(plot_vs_k(results, base.with_name(base.name + "-vs-k.png")))
    if len({r.meta["vector_dtype"] for r in results}) > 1:
        written.append(plot_vs_dtype(results, base.with_name(base.name + "-vs-dtype.png")))
    return written


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(
            "plots need matplotlib: pip install 'ragcompress[plot]' (or drop the plot options)"
        ) from None
    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def plot_vs_k(results: Sequence[QAResult], path: Path) -> Path:
    """EM and token F1 against k, a line per mode (and dtype); retrieval recall@k dashed."""
    plt = _pyplot()
    dtypes = list(dict.fromkeys(r.meta["vector_dtype"] for r in results))
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, (key, label) in zip(axes, COLUMNS[:2]):
        for d_i, dtype in enumerate(dtypes):
            runs = sorted((r for r in results if r.meta["vector_dtype"] == dtype), key=lambda r: r.k)
            ks = [r.k for r in runs]
            for m_i, mode in enumerate(runs[0].scores):
                if mode == "none" and d_i > 0:  # reads no index: the same line for every dtype
                    continue
                tag = f"{mode} ({dtype})" if len(dtypes) > 1 else mode
                ax.plot(
                    ks,
                    [r.scores[mode][key] for r in runs],
                    styles[d_i % 4],
                    marker="o",
                    color=f"C{m_i}",
                    label=tag,
                )
            if key == "em" and d_i == 0 and runs[0].recall_at_k is not None:
                ax.plot(ks, [r.recall_at_k for r in runs], "k--", alpha=0.6, label="recall@k (retrieval)")
        ax.set_title(f"{TITLES[key]} vs k")
        ax.set_xlabel("k (chunks retrieved per question)")
        ax.set_ylabel(f"{label} (share of questions, 0–1)" if key == "em" else f"{label} (mean, 0–1)")
        ax.set_xticks(sorted({r.k for r in results}))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(_caption(results))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_vs_dtype(results: Sequence[QAResult], path: Path) -> Path:
    """Grouped bars of EM per stored vector dtype at the largest k, a bar per mode."""
    plt = _pyplot()
    k = max(r.k for r in results)
    runs = [r for r in results if r.k == k]
    modes = list(runs[0].scores)
    width = 0.8 / len(modes)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(runs) * len(modes) ** 0.5 + 3), 4.5))
    for m_i, mode in enumerate(modes):
        xs = [i + (m_i - (len(modes) - 1) / 2) * width for i in range(len(runs))]
        values = [r.scores[mode]["em"] for r in runs]
        bars = ax.bar(xs, values, width, label=mode, color=f"C{m_i}")
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels(
        [f"{r.meta['vector_dtype']}\n{r.meta['index']['bytes_per_token']:.1f} B/token" for r in runs]
    )
    ax.set_xlabel("stored summary-vector dtype (payload bytes per text token)")
    ax.set_ylabel("exact match (share of questions, 0–1)")
    ax.set_ylim(0, 1.1)
    ax.set_title(f"Exact match vs vector dtype, k={k}")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(_caption(results), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _caption(results: Sequence[QAResult]) -> str:
    meta = results[0].meta
    return (
        f"{meta['questions']} questions from {Path(meta['questions_file']).name}; compressor {meta['model']}"
    )


def plot_comparison(
    a: QAResult, b: QAResult, mode: str, names: tuple[str, str], summary: dict, path: Path
) -> Path:
    """Two runs question by question: how many each gets right, and each question's F1 under A and B."""
    plt = _pyplot()
    f1_a = {row["id"]: row["f1"] for row in a.predictions[mode]}
    f1_b = {row["id"]: row["f1"] for row in b.predictions[mode]}
    em_a = {row["id"]: row["em"] >= 1 for row in a.predictions[mode]}
    em_b = {row["id"]: row["em"] >= 1 for row in b.predictions[mode]}
    groups = {
        "both right": (True, True),
        "only A": (True, False),
        "only B": (False, True),
        "neither": (False, False),
    }
    colors = {"both right": "C2", "only A": "C0", "only B": "C1", "neither": "0.6"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
    counts = [summary["both"], summary["only_a"], summary["only_b"], summary["neither"]]
    bars = left.bar(list(groups), counts, color=[colors[g] for g in groups])
    left.bar_label(bars)
    left.set_xlabel("exact match of A and B on the same question")
    left.set_ylabel("questions (count)")
    left.set_title(f"exact match, {mode}: sign test p = {summary['p_value']:.2g}")
    # Deterministic jitter, so many questions at F1 0 or 1 do not hide behind one another.
    for name, (in_a, in_b) in groups.items():
        ids = [i for i in f1_a if em_a[i] == in_a and em_b[i] == in_b]
        jitter = [((zlib.crc32(i.encode()) % 1000) / 1000 - 0.5) * 0.04 for i in ids]
        right.scatter(
            [f1_a[i] + j for i, j in zip(ids, jitter)],
            [f1_b[i] - j for i, j in zip(ids, jitter)],
            s=14,
            alpha=0.6,
            color=colors[name],
            label=f"{name} ({len(ids)})",
        )
    right.plot([0, 1], [0, 1], "k:", linewidth=1)
    right.set_xlabel(f"token F1 of A (0–1): {Path(names[0]).name}")
    right.set_ylabel(f"token F1 of B (0–1): {Path(names[1]).name}")
    right.set_title("per question (above the diagonal: B better)")
    right.set_xlim(-0.05, 1.05)
    right.set_ylim(-0.05, 1.05)
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"A: {names[0]} (EM {summary['em_a']:.3f})  vs  B: {names[1]} (EM {summary['em_b']:.3f}), "
        f"{summary['questions']} questions",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
