"""Print the model card's evaluation tables (markdown) from `scripts/train_default.py eval` JSON files.

python scripts/card_tables.py --eval runs/default/eval --models stage2 stage1 base
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, required=True, help="the eval folder (ppl-*.json, qa-*.json)")
    parser.add_argument("--models", nargs="*", default=["stage2", "stage1", "base"])
    args = parser.parse_args()
    for kind, render in (("ppl", ppl_table), ("qa", qa_table)):
        found = {m: args.eval / f"{kind}-{m}.json" for m in args.models}
        results = {m: json.loads(p.read_text()) for m, p in found.items() if p.is_file()}
        missing = [m for m in args.models if m not in results]
        print(
            f"<!-- {kind}: {', '.join(results)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + " -->"
        )
        print(render(results) if results else "(no results)")
        print()


if __name__ == "__main__":
    main()
