"""Write a corpus whose train split holds only the listed documents (validation and test stay whole).

    python scripts/subset_corpus.py --ids experiments/runs/v2/phase1-corpus-subset.json --corpus data/corpus --out data/corpus-sub

The ids file maps each source to its train document ids in file order (and the sha256 of the train file
they make), as kept for phase 1 of the v2 default model, so that run can be repeated exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path


def subset(ids_file: Path, corpus: Path, out: Path) -> None:
    spec = json.loads(ids_file.read_text())["sources"]
    for source, entry in spec.items():
        train = corpus / source / "train.jsonl"
        if not train.is_file():
            raise SystemExit(f"{train} is missing: run `python scripts/build_corpus.py --out {corpus}` first")
        lines = {json.loads(line)["id"]: line for line in train.read_bytes().splitlines(keepends=True)}
        missing = [i for i in entry["ids"] if i not in lines]
        if missing:
            raise SystemExit(
                f"{train} lacks {len(missing)} listed documents (e.g. {missing[0]}): another corpus build?"
            )
        data = b"".join(lines[i] for i in entry["ids"])
        if entry.get("sha256") and hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise SystemExit(f"{train}: the listed documents differ from the recorded ones (sha256 mismatch)")
        (out / source).mkdir(parents=True, exist_ok=True)
        (out / source / "train.jsonl").write_bytes(data)
        for split in ("validation", "test"):
            shutil.copyfile(corpus / source / f"{split}.jsonl", out / source / f"{split}.jsonl")
        print(f"{source}: {len(entry['ids'])} train documents")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    subset(args.ids, args.corpus, args.out)


if __name__ == "__main__":
    main()
