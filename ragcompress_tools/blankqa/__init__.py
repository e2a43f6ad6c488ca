"""Self-supervised fact-recall QA ("blank QA") from the training corpus, for stage 2 (issue 27).

Each question is a sentence of a passage with one span (a number, year, date, name, code-like string
or term) replaced by `____`; the answer is that span, verbatim. `passages` cuts the train split into
passages and finds their usable sentences, `spans` finds and classifies the blankable spans, `build`
picks the questions. `scripts/make_blankqa.py` writes a set with `ragcompress.data.qa_dataset.write`.
"""

from ragcompress_tools.blankqa.build import (
    BLANK,
    TEMPLATES,
    BlankQAConfig,
    blank_question,
    make_blankqa,
    passage_id,
)
from ragcompress_tools.blankqa.spans import KINDS, Span, WordStats, find_spans

__all__ = [
    "BLANK",
    "KINDS",
    "TEMPLATES",
    "BlankQAConfig",
    "Span",
    "WordStats",
    "blank_question",
    "find_spans",
    "make_blankqa",
    "passage_id",
]
