"""Write a blank-QA training set (fact recall from passages of the corpus's train splits) for stage 2.

    python scripts/make_blankqa.py --corpus data/corpus --out /work/blankqa --max-questions 20000

writes `corpus/<passage id>.txt` and `questions.jsonl` in the evaluation data format and prints the
questions per kind and source. Passages are cut by the default tokenizer's count (`--proxy-tokens`:
a tokenizer-free estimate). The same arguments always give byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from ragcompress.data.qa_dataset import write
from ragcompress.defaults import load_tokenizer
from ragcompress_tools.blankqa import KINDS, BlankQAConfig, make_blankqa
from ragcompress_tools.blankqa.build import DEFAULT_MAX_TOKENS

DEFAULT_SOURCES = ",".join(BlankQAConfig().sources)


def tokenizer_counts():
    """The default tokenizer's token counts (no special tokens), as `make_blankqa` wants them."""
    tokenizer = load_tokenizer()

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, help="the corpus directory of scripts/build_corpus.py")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--sources", default=DEFAULT_SOURCES, help=f"comma-separated (default {DEFAULT_SOURCES})"
    )
    parser.add_argument("--max-questions", type=int, default=20000)
    parser.add_argument("--per-passage", type=int, default=2, help="at most this many questions per passage")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        help="passage length limit in tokens (default: stage 2's qa_passage_tokens, so no blank is cut off)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--proxy-tokens", action="store_true", help="estimate token counts without the tokenizer"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    args = parser.parse_args(argv)

    sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    config = BlankQAConfig(
        sources=sources,
        max_questions=args.max_questions,
        per_passage=args.per_passage,
        max_tokens=args.max_tokens,
        seed=args.seed,
    )
    try:
        counter = {} if args.proxy_tokens else {"count_tokens": tokenizer_counts()}
        dataset = make_blankqa(args.corpus, config, **counter)
        out = write(dataset, args.out, overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"make_blankqa: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(dataset.documents)} passages and {len(dataset.questions)} questions to {out}")
    table = Counter((q["source"], q["kind"]) for q in dataset.questions)
    print("source".ljust(12) + "".join(k.rjust(8) for k in KINDS) + "total".rjust(8))
    for source in sources:
        row = [table[source, kind] for kind in KINDS]
        print(source.ljust(12) + "".join(str(n).rjust(8) for n in row) + str(sum(row)).rjust(8))
    totals = [sum(table[s, kind] for s in sources) for kind in KINDS]
    print("total".ljust(12) + "".join(str(n).rjust(8) for n in totals) + str(sum(totals)).rjust(8))
    return 0


if __name__ == "__main__":
    sys.exit(main())
