"""Print the model card's evaluation tables (markdown) from `scripts/train_default.py eval` JSON files.

python scripts/card_tables.py --eval runs/default/eval --models stage2 stage1 base

A model may also be LABEL=FOLDER:MODEL, to put a column from another run's eval folder beside them:
python scripts/card_tables.py --eval experiments/runs/v5/eval --models stage2 v4-stage2=experiments/runs/v4/eval:stage2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ragcompress.eval.qa_metrics import ANSWER_KINDS


def ppl_table(results: dict[str, dict]) -> str:
    labels = list(results)
    lines = ["| context | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    first = next(iter(results.values()))
    steps = range(1, first["context_segments"] + 1)
    conditions = [("none", 0, "none")]
    conditions += [("compressed", j, f"{j} segment(s) compressed") for j in steps]
    conditions += [("full", j, f"{j} segment(s) as plain text") for j in steps]
    for condition, j, name in conditions:
        cells = []
        for data in results.values():
            row = next(r for r in data["rows"] if r["condition"] == condition and r["context_segments"] == j)
            cell = f"{row['ppl']:.3f}"
            if condition == "compressed":
                cell += f" ({100 * data['gain_kept'][str(j)]:.1f} % kept)"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def qa_table(results: dict[str, dict]) -> str:
    lines = [
        "| model | n | none EM / F1 | text EM / F1 | fused EM / F1 | fused ÷ text (EM) |",
        "|---|---:|---|---|---|---:|",
    ]
    for label, data in results.items():
        s = data["scores"]
        ratio = s["fused"]["em"] / s["text"]["em"] if s["text"]["em"] else float("nan")
        cells = [f"{s[m]['em']:.3f} / {s[m]['f1']:.3f}" for m in ("none", "text", "fused")]
        lines.append(f"| {label} | {s['text']['n']} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    return "\n".join(lines)


def qa_kind_table(results: dict[str, dict]) -> str:
    """Fused and text EM per answer kind (year, number, name, word), for results that carry them."""
    rows = {label: data["scores_by_kind"] for label, data in results.items() if data.get("scores_by_kind")}
    kinds = [k for k in ANSWER_KINDS if any(k in b.get("fused", {}) for b in rows.values())]
    if not kinds:
        return "(no scores by answer kind)"
    n = {k: next(b["fused"][k]["n"] for b in rows.values() if k in b.get("fused", {})) for k in kinds}
    lines = [
        "| model | mode | " + " | ".join(f"{k} (n = {n[k]})" for k in kinds) + " |",
        "|---|---|" + "---:|" * len(kinds),
    ]
    for label, by_mode in rows.items():
        for mode in ("none", "text", "fused"):
            if mode in by_mode:
                cells = [f"{by_mode[mode][k]['em']:.3f}" if k in by_mode[mode] else "—" for k in kinds]
                lines.append(f"| {label} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_sources(models: list[str], default: Path) -> dict[str, tuple[Path, str]]:
    """label -> (eval folder, model name) for ``--models`` entries: MODEL or LABEL=FOLDER:MODEL."""
    sources = {}
    for spec in models:
        label, _, where = spec.partition("=")
        folder, _, model = where.rpartition(":") if where else ("", "", label)
        sources[label] = (Path(folder) if folder else default, model)
    return sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, required=True, help="the eval folder (ppl-*.json, qa-*.json)")
    parser.add_argument("--models", nargs="*", default=["stage2", "stage1", "base"])
    args = parser.parse_args()
    specs = model_sources(args.models, args.eval)
    for name, kind, render in (
        ("ppl", "ppl", ppl_table),
        ("qa", "qa", qa_table),
        ("qa by kind", "qa", qa_kind_table),
    ):
        found = {label: folder / f"{kind}-{model}.json" for label, (folder, model) in specs.items()}
        results = {m: json.loads(p.read_text()) for m, p in found.items() if p.is_file()}
        missing = [m for m in specs if m not in results]
        print(
            f"<!-- {name}: {', '.join(results)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + " -->"
        )
        print(render(results) if results else "(no results)")
        print()


if __name__ == "__main__":
    main()
