"""Build the real-document QA set: reference-manual pages we did not write, and questions about them.

    python scripts/build_realdocs_qa.py --out data/realdocs [--overwrite]

writes `data/realdocs/corpus/<doc_id>.txt` (one file per page listed in evalsets/realdocs/documents.txt,
extracted from the installed Debian packages python3.11-doc and linux-doc-6.1 exactly as the training
corpus reader sees them) and `data/realdocs/questions.jsonl` (a copy of the committed
evalsets/realdocs/questions.jsonl). The page text is not committed: the packages are the source.
The pages are held out of training (scripts/build_corpus.py drops them from every train split) and
the questions carry the held-out marker that the stage-2 loader refuses. See docs/evaluation-sets.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ragcompress.data.qa_dataset import SynthQA, read, write
from ragcompress_tools.corpus import SOURCES, locate_input, read_rst_sources

ROOT = Path(__file__).resolve().parents[1]
SET_DIR = ROOT / "evalsets" / "realdocs"
DOCUMENTS = SET_DIR / "documents.txt"
QUESTIONS = SET_DIR / "questions.jsonl"


def listed_ids(path: Path = DOCUMENTS) -> list[str]:
    """Corpus ids (`<source>/<name>#00000`) of a held-out list: one per line, `#` lines are comments."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def doc_id_of(corpus_id: str) -> str:
    """The file name of a page in the QA set: `linux-docs/x86/iommu#00000` -> `linux-docs__x86__iommu`."""
    return corpus_id.split("#", 1)[0].replace("/", "__")


def extract(corpus_ids: list[str]) -> list[tuple[str, str]]:
    """(doc_id, text) of each listed page, read with the corpus reader so the text is the corpus's."""
    wanted: dict[str, set[str]] = {}
    for corpus_id in corpus_ids:
        wanted.setdefault(corpus_id.split("/", 1)[0], set()).add(corpus_id)
    documents = []
    for source, ids in sorted(wanted.items()):
        if source not in SOURCES:
            raise SystemExit(f"{DOCUMENTS}: unknown source {source!r}")
        root = locate_input(source)
        if root is None:
            raise SystemExit(
                f"{SOURCES[source].package} is not installed: "
                f"sudo apt-get install -y --no-install-recommends {SOURCES[source].package}"
            )
        found = {doc.id: doc.text for doc in read_rst_sources(root, source) if doc.id in ids}
        missing = sorted(ids - found.keys())
        if missing:
            raise SystemExit(
                f"{root}: listed pages not found (another package version?): {', '.join(missing)}"
            )
        documents += [(doc_id_of(corpus_id), text) for corpus_id, text in found.items()]
    return sorted(documents)


def check(dataset: SynthQA) -> list[str]:
    """Problems with the questions against the extracted pages (empty when the set is sound)."""
    texts = dict(dataset.documents)
    problems = []
    for q in dataset.questions:
        for doc_id in q["doc_ids"]:
            missing = [a for a in q["answers"] if a not in texts.get(doc_id, "")]
            if missing:
                problems.append(f"{q['id']}: {missing} not written verbatim in {doc_id}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "realdocs")
    parser.add_argument("--overwrite", action="store_true", help="replace a set already in --out")
    args = parser.parse_args(argv)

    documents = extract(listed_ids())
    with open(QUESTIONS, encoding="utf-8") as f:
        questions = [json.loads(line) for line in f if line.strip()]
    dataset = SynthQA(documents=documents, questions=questions)
    problems = check(dataset)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    try:
        out = write(dataset, args.out, overwrite=args.overwrite)
    except FileExistsError as error:
        parser.error(str(error))
    read(out)  # the evaluation loader accepts it (ids unique, every gold page present)
    print(f"wrote {len(documents)} pages and {len(questions)} questions to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
