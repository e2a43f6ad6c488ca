"""Build a blank-QA set: passages of the train corpus, one blanked span per question, kinds balanced.

Sources take turns (one passage each, in a seeded order of all their passages) until `max_questions`
are chosen, so a small source is not drowned by a large one. In a passage, up to `per_passage`
sentences are used, one span each; of a sentence's spans the kind asked least so far wins, and no kind
may pass `MAX_KIND_SHARE` of the set, no answer `MAX_ANSWER_SHARE`.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ragcompress.data.qa_dataset import SynthQA
from ragcompress_tools.blankqa.passages import (
    TECHNICAL_SOURCES,
    VERSE_SOURCES,
    Passage,
    TokenCounter,
    check_sources,
    cut_passages,
    heldout_ids,
    proxy_token_counts,
    sentences,
    train_documents,
)
from ragcompress_tools.blankqa.spans import KINDS, Span, WordStats, find_spans

BLANK = "____"
MAX_KIND_SHARE = 0.35
MAX_ANSWER_TOKENS = 8
# No answer may be a guess worth learning: "two" or "None" may answer at most this share of the set
# (and at least MIN_ANSWER_REPEATS questions, for small sets).
MAX_ANSWER_SHARE, MIN_ANSWER_REPEATS = 0.002, 3
# The stage-2 default (configs/default/stage2.yaml qa_passage_tokens): a longer passage is truncated
# there, and a blank in the cut-off tail could not be answered.
DEFAULT_MAX_TOKENS = 256
TEMPLATES = (
    'Fill in the blank from the passage: "{s}"',
    'What is missing here? "{s}"',
    "Complete: {s}",
    '"{s}" — what goes in the blank?',
    "Which word or words fill the blank? {s}",
    "From the passage, complete the sentence: {s}",
    'Fill the gap: "{s}"',
    'According to the passage, what belongs in the blank of "{s}"?',
)


@dataclass
class BlankQAConfig:
    sources: tuple[str, ...] = ("linux-docs", "python-docs", "austen", "shakespeare", "gcide")
    max_questions: int = 20000
    per_passage: int = 2
    max_tokens: int = DEFAULT_MAX_TOKENS
    seed: int = 0


def make_blankqa(
    corpus: str | Path, config: BlankQAConfig, count_tokens: TokenCounter = proxy_token_counts
) -> SynthQA:
    """The blank-QA set of `config` from `corpus`'s train splits, as a dataset ready for `qa_dataset.write`.

    The same corpus, config and counter always give the same dataset. Every question carries `kind`
    (one of `spans.KINDS`) and `source`; none carries a held-out marker: this is training data.
    """
    corpus = Path(corpus)
    sources = list(config.sources)
    check_sources(corpus, sources)
    if config.max_questions < 1 or config.per_passage < 1:
        raise ValueError("max_questions and per_passage must be at least 1")
    exclude = heldout_ids()
    documents = {source: list(train_documents(corpus, source, exclude)) for source in sources}
    stats = WordStats(text for docs in documents.values() for _, text in docs)
    queues: dict[str, list[Passage]] = {}
    for source in sources:
        passages = [
            passage
            for doc_id, text in documents[source]
            for passage in cut_passages(doc_id, source, text, config.max_tokens, count_tokens)
        ]
        random.Random(f"blankqa/{config.seed}/{source}").shuffle(passages)
        queues[source] = passages[::-1]  # pop() from the end takes them in shuffled order

    tally = _Tally(
        kind_cap=math.ceil(MAX_KIND_SHARE * config.max_questions),
        answer_cap=max(MIN_ANSWER_REPEATS, math.ceil(MAX_ANSWER_SHARE * config.max_questions)),
    )
    chosen: list[tuple[Passage, str, dict]] = []  # (passage, safe id, question)
    rng = random.Random(f"blankqa/{config.seed}/choice")
    active = [s for s in sources if queues[s]]
    while active and len(chosen) < config.max_questions:
        for source in list(active):
            if not queues[source]:
                active.remove(source)
                continue
            passage = queues[source].pop()
            questions = _passage_questions(passage, stats, tally, config, rng, count_tokens)
            for question in questions[: config.max_questions - len(chosen)]:
                chosen.append((passage, passage_id(passage), question))
    chosen = _cap_kinds(chosen)
    documents_out = {pid: passage.text for passage, pid, _ in chosen}
    questions_out = []
    for number, (_, pid, question) in enumerate(chosen):
        qid = f"blank-{number:06d}"
        template = TEMPLATES[_stable_int(f"{config.seed}|{qid}|template") % len(TEMPLATES)]
        questions_out.append(
            {
                "id": qid,
                "question": template.format(s=question["sentence"]),
                "answers": [question["answer"]],
                "doc_ids": [pid],
                "kind": question["kind"],
                "source": question["source"],
            }
        )
    return SynthQA(documents=sorted(documents_out.items()), questions=questions_out)


def passage_id(passage: Passage) -> str:
    """A file-name-safe, unique id: the corpus id with unsafe characters as `_`, part and a short hash."""
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", passage.doc_id).strip("._")[:80]
    digest = hashlib.sha256(passage.doc_id.encode()).hexdigest()[:8]
    return f"{readable}-p{passage.part:03d}-{digest}"


def blank_question(passage_text: str, start: int, end: int, span: Span) -> tuple[str, str]:
    """(question sentence with whitespace runs as one space and the span as `____`, the answer)."""
    sentence = passage_text[start:end]
    blanked = sentence[: span.start] + BLANK + sentence[span.end :]
    return " ".join(blanked.split()), sentence[span.start : span.end]


def _passage_questions(
    passage: Passage,
    stats: WordStats,
    tally: _Tally,
    config: BlankQAConfig,
    rng: random.Random,
    count_tokens: TokenCounter,
) -> list[dict]:
    found = sentences(passage)
    normalised = [" ".join(passage.text[s:e].split()) for s, e in found]
    order = rng.sample(range(len(found)), len(found))
    questions: list[dict] = []
    for index in order:
        if len(questions) >= config.per_passage:
            break
        start, end = found[index]
        candidates = []
        spans = find_spans(
            passage.text[start:end],
            stats,
            line_starts_capitalised=passage.source in VERSE_SOURCES,
            code=passage.source in TECHNICAL_SOURCES,
        )
        for span in spans:
            sentence, answer = blank_question(passage.text, start, end, span)
            if not tally.allows(span.kind, answer):
                continue
            if answer in sentence or answer != answer.strip() or not answer:
                continue  # the answer would still be readable in the question
            if _ambiguous(sentence, index, normalised):
                continue
            candidates.append((tally.kinds[span.kind], rng.random(), span.kind, sentence, answer))
        candidates = [c for c in candidates if count_tokens([c[4]])[0] <= MAX_ANSWER_TOKENS]
        if not candidates:
            continue
        _, _, kind, sentence, answer = min(candidates)
        question = {"kind": kind, "sentence": sentence, "answer": answer, "source": passage.source}
        tally.add(question)  # counted when chosen; only the last passage may lose some
        questions.append(question)
    return questions


@dataclass
class _Tally:
    """Questions so far per kind and per answer (case-folded), against their caps."""

    kind_cap: int
    answer_cap: int
    kinds: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)

    def allows(self, kind: str, answer: str) -> bool:
        return self.kinds[kind] < self.kind_cap and self.answers[answer.casefold()] < self.answer_cap

    def add(self, question: dict) -> None:
        self.kinds[question["kind"]] += 1
        self.answers[question["answer"].casefold()] += 1


def _ambiguous(blanked: str, index: int, normalised: list[str]) -> bool:
    """Another sentence of the passage fits the same blank with a different filler."""
    before, after = blanked.split(BLANK, 1)
    return any(
        other.startswith(before) and other.endswith(after) and len(other) > len(before) + len(after)
        for number, other in enumerate(normalised)
        if number != index and other != normalised[index]
    )


def _cap_kinds(chosen: list[tuple[Passage, str, dict]]) -> list[tuple[Passage, str, dict]]:
    """Drop the latest questions of any kind above `MAX_KIND_SHARE` of the final set: a corpus that runs
    out before `max_questions` makes the cap used while choosing too loose. With fewer than three kinds
    the share cannot be met, and the set is left as it is."""
    chosen = list(chosen)
    while True:
        counts = Counter(q["kind"] for _, _, q in chosen)
        if len(counts) < 3:
            return chosen
        kind, top = counts.most_common(1)[0]
        if top <= MAX_KIND_SHARE * len(chosen):
            return chosen
        last = max(i for i, (_, _, q) in enumerate(chosen) if q["kind"] == kind)
        del chosen[last]


def _stable_int(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


__all__ = ["BLANK", "KINDS", "TEMPLATES", "BlankQAConfig", "blank_question", "make_blankqa", "passage_id"]
