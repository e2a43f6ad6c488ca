"""Write a synthetic retrieval-QA set in the evaluation data format.

    python scripts/make_synthqa.py --out data/synthqa --split test --entities 300 --seed 0
    python scripts/make_synthqa.py --out data/synthqa-ood --style ood --split test --entities 300

writes `data/synthqa/corpus/<doc_id>.txt`, `questions.jsonl` and `entities.jsonl`. The same arguments
always give byte-identical files; train, dev and test never share a name, whatever the seeds.
"""

from __future__ import annotations

import argparse

from ragcompress.data.qa_dataset import write
from ragcompress_tools.synthqa import STYLES, generate
from ragcompress_tools.synthqa.names import SPLIT_BUCKETS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--split", choices=sorted(SPLIT_BUCKETS), default="test")
    parser.add_argument("--entities", type=int, default=300, help="number of documents (one per entity)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--style",
        choices=STYLES,
        default="default",
        help="ood: the out-of-distribution evaluation set (docs/evaluation-sets.md), never for training",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    args = parser.parse_args(argv)

    try:
        dataset = generate(args.split, args.entities, args.seed, style=args.style)
    except ValueError as error:  # e.g. --style ood --split train
        parser.error(str(error))
    try:
        out = write(dataset, args.out, overwrite=args.overwrite)
    except FileExistsError as error:
        parser.error(str(error))
    print(f"wrote {len(dataset.documents)} documents and {len(dataset.questions)} questions to {out}")


if __name__ == "__main__":
    main()
