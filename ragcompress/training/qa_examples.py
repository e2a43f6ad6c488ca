"""Training examples for the answer format ("stage 2"): a question, its gold passage among distractors.

A plain generator over Python dicts, no torch: the trainer tokenises and compresses the passages. The
hard distractors come from `entities.jsonl` when a dataset has one (the synthetic generator writes it).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence

from ragcompress.data.qa_dataset import SynthQA

_CAPITALISED_WORD = re.compile(r"\b[A-Z][a-z]+\b")


def training_examples(
    dataset: SynthQA,
    k: int,
    rng_seed: int,
    distractor_pool: Sequence[str] | None = None,
    gold_last_prob: float = 0.6,
) -> Iterator[dict]:
    """One pass over the questions in seeded random order, each with its gold passage among distractors.

    Yields `{"id", "question", "answer", "answers", "passages", "gold_index", "doc_ids"}` where
    `passages` holds k texts (fewer if the dataset is smaller) and `doc_ids` their ids (None for texts
    from `distractor_pool`).

    Distractors are the most confusable documents first: those naming the gold entity, then its
    group (same kind, same fact types, nearby values), then its kind; then random ones, drawn from
    `distractor_pool` (plain passage texts, e.g. a real corpus) when given, else from the dataset.
    A dataset read without `entities.jsonl` gets random distractors only.

    Order: passages go least to most relevant, as retrieval fuses them at inference (the most
    relevant one nearest the question): random distractors, then kind, group and naming ones. The gold
    passage is last with probability `gold_last_prob` (0.6) and otherwise at a uniformly random other
    position: the retriever ranks the gold first most of the time but not always, and a model that
    only ever saw it last would learn to read the last passage and ignore the rest.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    rng = random.Random(f"ragcompress-synthqa-examples/{rng_seed}")
    texts = dict(dataset.documents)
    all_doc_ids = [doc_id for doc_id, _ in dataset.documents]
    by_kind: dict[str, list[str]] = defaultdict(list)
    by_group: dict[str, list[str]] = defaultdict(list)
    for doc_id, meta in dataset.entities.items():
        if doc_id in texts:
            by_kind[meta["kind"]].append(doc_id)
            by_group[meta["group"]].append(doc_id)
    naming: dict[str, list[str]] = defaultdict(list)  # invented word -> documents that contain it
    for doc_id, text in dataset.documents:
        for word in sorted(set(_CAPITALISED_WORD.findall(text))):
            naming[word].append(doc_id)

    for index in rng.sample(range(len(dataset.questions)), len(dataset.questions)):
        question = dataset.questions[index]
        golds = [doc_id for doc_id in question["doc_ids"] if doc_id in texts]
        if not golds:
            continue  # nothing to read the answer from: useless for training the answer format
        excluded = set(golds)
        hard: list[str] = []  # most confusable first
        meta = dataset.entities.get(golds[0])
        tiers = [naming[meta["key"]], by_group[meta["group"]], by_kind[meta["kind"]]] if meta else []
        for tier in tiers:
            candidates = [doc_id for doc_id in tier if doc_id not in excluded]
            for doc_id in rng.sample(candidates, min(len(candidates), k - 1 - len(hard))):
                hard.append(doc_id)
                excluded.add(doc_id)
        random_ids = _random_distractors(
            rng, k - 1 - len(hard), excluded, all_doc_ids, distractor_pool, texts
        )
        passage_ids = random_ids + hard[::-1]
        gold_index = len(passage_ids)
        if passage_ids and rng.random() >= gold_last_prob:
            gold_index = rng.randrange(len(passage_ids))
        passage_ids.insert(gold_index, golds[0])
        yield {
            "id": question["id"],
            "question": question["question"],
            "answer": question["answers"][0],
            "answers": list(question["answers"]),
            "passages": [texts[p] if isinstance(p, str) else distractor_pool[p] for p in passage_ids],
            "gold_index": gold_index,
            "doc_ids": [p if isinstance(p, str) else None for p in passage_ids],
        }


def _random_distractors(
    rng: random.Random,
    n: int,
    excluded: set[str],
    all_doc_ids: list[str],
    distractor_pool: Sequence[str] | None,
    texts: dict[str, str],
) -> list:
    """`n` random distractors: dataset doc ids, or integer indices into `distractor_pool`."""
    if n <= 0:
        return []
    if distractor_pool is not None:
        excluded_texts = {texts[doc_id] for doc_id in excluded}
        # Oversample by the excluded count so that, after dropping copies of those texts, n remain.
        picks = rng.sample(range(len(distractor_pool)), min(len(distractor_pool), n + len(excluded)))
        return [i for i in picks if distractor_pool[i] not in excluded_texts][:n]
    picks = rng.sample(all_doc_ids, min(len(all_doc_ids), n + len(excluded)))
    return [doc_id for doc_id in picks if doc_id not in excluded][:n]
