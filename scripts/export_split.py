"""Write one split of corpus sources as a folder of .txt files, one per record, for `ragcompress index` and
`ragcompress eval rlm` (which read folders of documents, not the corpus's JSONL).

    python scripts/export_split.py --corpus data/corpus --sources linux-docs,python-docs --split test --out rlm/corpus
    python scripts/export_split.py --corpus data/corpus --sources linux-docs,python-docs --split validation --out rlm/heldout

The card's retrieval-augmented language-modelling table indexes the test pages and scores the
validation pages: neither split is ever trained on. A file is named after its record's id
(`linux-docs/admin-guide/init#00000` → `linux-docs_admin-guide_init_00000.txt`) and holds its text as is.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def file_name(record_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", record_id) + ".txt"


def export(corpus: Path, sources: list[str], split: str, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for source in sources:
        path = corpus / source / f"{split}.jsonl"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run `python scripts/build_corpus.py --out {corpus}` first")
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            target = out / file_name(record["id"])
            if target.exists():
                raise SystemExit(f"{target} exists already: two records with one name, or --out is not empty")
            target.write_text(record["text"], encoding="utf-8")
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    parser.add_argument("--sources", required=True, help="comma-separated, e.g. linux-docs,python-docs")
    parser.add_argument("--split", required=True, choices=["train", "validation", "test"])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    n = export(args.corpus, [s for s in args.sources.split(",") if s], args.split, args.out)
    print(f"{n} documents written to {args.out}")


if __name__ == "__main__":
    main()
