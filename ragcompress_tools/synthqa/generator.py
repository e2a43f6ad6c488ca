"""A synthetic retrieval-QA set about invented entities, in the evaluation data format of docs/design.md.

No QA set ships offline, so we generate one. It serves twice: to train the default model's answer
format (read summary vectors of k passages, then a question, answer briefly) and to measure EM/F1 for
no retrieval, full-text passages and fused summary vectors. Because every name is invented (see
`names`), the base LM cannot answer from memory: a correct answer has to come from a passage.

Each entity (person, town, company, ship, river, mountain) becomes one document of ~60-180 words:
an intro, its 4-7 facts in random order and wording, and a filler sentence or two. Entities come in
small groups of the same kind with the same fact types and nearby values (hard distractors), and many
documents name other entities (a person's birthplace is a generated town).

`generate` returns a `ragcompress.data.qa_dataset.SynthQA`; `ragcompress.data.qa_dataset.write` puts
it on disk (with `entities.jsonl`, the kind and group per document that stage-2 training uses to pick
hard distractors).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ragcompress.data.qa_dataset import SynthQA
from ragcompress.eval.qa_metrics import normalize_answer
from ragcompress_tools.synthqa import ood
from ragcompress_tools.synthqa.facts import Context, KindSpec, Value, with_article
from ragcompress_tools.synthqa.kinds import CONFUSION_SENTENCES, GENERIC_FILLERS, KINDS
from ragcompress_tools.synthqa.names import EntityName, NamePool

# Each document is padded with filler to a random length in this range (words), so that length says
# nothing about content; facts alone are 40-90 words.
MIN_WORDS, MAX_TARGET_WORDS = 60, 140
# Share of documents that name another entity of their group ("not to be confused with ...").
CONFUSION_SHARE = 0.4
# People are referred to by pronoun in this share of later sentences, other things by "the town" etc.
PRONOUN_SHARE, NOUN_SHARE = 0.4, 0.35


__all__ = ["STYLES", "generate"]


@dataclass
class _Entity:
    doc_id: str
    spec: KindSpec
    name: EntityName
    group: int
    values: dict[str, Value] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # the facts the document states
    # People get a grammatical gender only for pronouns; it carries no fact and is never asked about.
    pronoun: tuple[str, str] = ("it", "its")
    confused_with: EntityName | None = None  # another member of the group the document names


def _allocate(n_entities: int) -> list[int]:
    """Entities per kind in proportion to the kind weights (largest remainder, so they sum to n)."""
    total = sum(spec.weight for spec in KINDS)
    exact = [n_entities * spec.weight / total for spec in KINDS]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(KINDS)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: n_entities - sum(counts)]:
        counts[i] += 1
    return counts


def _make_entities(split: str, n_entities: int, rng: random.Random) -> list[_Entity]:
    names = NamePool(split, rng)
    entities: list[_Entity] = []
    # Names first, facts second: a fact may refer to any entity of the dataset.
    for spec, n in zip(KINDS, _allocate(n_entities)):
        group, left_in_group = -1, 0
        for j in range(n):
            if left_in_group == 0:
                group, left_in_group = group + 1, rng.choice((2, 3))
            left_in_group -= 1
            entity = _Entity(f"{split}-{spec.kind}-{j:04d}", spec, spec.make_name(names), group)
            if spec.pronouns:
                entity.pronoun = rng.choice((("he", "his"), ("she", "her")))
            entities.append(entity)
    context = Context(rng=rng, names=names)
    for entity in entities:
        context.entities.setdefault(entity.spec.kind, []).append(entity.name)

    first_of_group: dict[tuple[str, int], _Entity] = {}
    for entity in entities:
        anchor = first_of_group.setdefault((entity.spec.kind, entity.group), entity)
        if anchor is entity:
            n_facts = rng.randint(4, min(7, len(entity.spec.facts)))
            entity.keys = rng.sample([fact.key for fact in entity.spec.facts], n_facts)
        else:  # a hard distractor: same fact types as its group, nearby or shared values
            entity.keys = list(anchor.keys)
            if rng.random() < CONFUSION_SHARE:
                entity.confused_with = anchor.name
            if rng.random() < CONFUSION_SHARE:
                anchor.confused_with = entity.name
        context.self_name = entity.name
        for fact in entity.spec.facts:  # spec order, so a death year can follow its birth year
            anchor_value = anchor.values.get(fact.key) if anchor is not entity else None
            entity.values[fact.key] = fact.sample(context, anchor_value, entity.values)
    return entities


def _sentence(template: str, entity: _Entity, rng: random.Random, **fields: str) -> str:
    """Fill a template, referring to the entity by name, by pronoun (people) or by noun ("the town")."""
    name = entity.name
    refer = {"s": name.short, "n": name.short, "p": name.possessive(short=True)}
    if entity.spec.pronouns:
        subject, possessive = entity.pronoun
        if rng.random() < PRONOUN_SHARE:
            refer.update(s=subject, p=possessive)
        elif "{p}" in template and ("{s}" in template or "{n}" in template):
            # "Osk worked ... for most of his life", not "... of Osk's life"
            refer["p"] = possessive
    elif entity.spec.nouns and rng.random() < NOUN_SHARE:
        noun = rng.choice(entity.spec.nouns)
        refer = {"s": noun, "n": noun, "p": noun + "'s"}
    sentence = template.format(**refer, **fields)
    return sentence[:1].upper() + sentence[1:]


def _render(entity: _Entity, rng: random.Random) -> str:
    spec, name = entity.spec, entity.name
    body = []
    for key in rng.sample(entity.keys, len(entity.keys)):  # a fresh fact order per document
        value = entity.values[key]
        template = rng.choice(spec.fact(key).sentences)
        body.append(_sentence(template, entity, rng, v=value.text, av=with_article(value.text)))
    if entity.confused_with is not None:
        template = rng.choice(CONFUSION_SENTENCES)
        body.insert(rng.randint(0, len(body)), _sentence(template, entity, rng, O=entity.confused_with.full))
    fillers = rng.sample(spec.fillers + GENERIC_FILLERS, len(spec.fillers + GENERIC_FILLERS))
    body.insert(rng.randint(0, len(body)), _sentence(fillers.pop(), entity, rng))
    intro = rng.choice(spec.intros).format(N=name.full, Np=name.possessive(), B=name.bare)
    sentences = [intro[:1].upper() + intro[1:]] + body
    target_words = rng.randint(MIN_WORDS, MAX_TARGET_WORDS)
    while fillers and len(" ".join(sentences).split()) < target_words:
        sentences.insert(rng.randint(1, len(sentences)), _sentence(fillers.pop(), entity, rng))
    return " ".join(sentences)


def _answers_in(value: Value, document: str, where: str) -> list[str]:
    """The value's answers that the document states literally (after normalisation), canonical first."""
    padded = f" {normalize_answer(document)} "
    present = [answer for answer in value.answers if f" {normalize_answer(answer)} " in padded]
    if not present or present[0] != value.answers[0]:
        raise AssertionError(f"{where}: canonical answer {value.answers[0]!r} missing from the document")
    return present


def _questions(entity: _Entity, document: str, rng: random.Random) -> list[dict]:
    name = entity.name
    keys = rng.sample(entity.keys, rng.randint(1, min(3, len(entity.keys))))
    questions = []
    for i, key in enumerate(keys):
        template = rng.choice(entity.spec.fact(key).questions)
        question = template.format(N=name.full, Np=name.possessive(), B=name.bare)
        answers = _answers_in(entity.values[key], document, f"{entity.doc_id}/{key}")
        questions.append(
            {
                "id": f"{entity.doc_id}-q{i}",
                "question": question,
                "answers": answers,
                "doc_ids": [entity.doc_id],
            }
        )
    return questions


STYLES = ("default", "ood")


def generate(split: str, n_entities: int, seed: int, style: str = "default") -> SynthQA:
    """A dataset of `n_entities` documents with 1-3 questions each; deterministic in (split, n, seed).

    `split` is "train", "dev" or "test"; names of different splits never overlap, whatever the seeds.
    `style="ood"` gives the out-of-distribution evaluation set of `ood` instead: other entity
    kinds, document shapes and question phrasings, "dev"/"test" only, and refused as training data.
    """
    if style == "ood":
        documents, questions, meta = ood.make(split, n_entities, seed)
        return SynthQA(documents=documents, questions=questions, entities=meta)
    if style != "default":
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    if n_entities < 1:
        raise ValueError("n_entities must be at least 1")
    # A string seed is hashed with SHA-512 by `random`, so it is stable across runs and processes.
    rng = random.Random(f"ragcompress-synthqa/{split}/{seed}")
    entities = _make_entities(split, n_entities, rng)
    documents, questions, meta = [], [], {}
    for entity in sorted(entities, key=lambda e: e.doc_id):
        text = _render(entity, rng)
        documents.append((entity.doc_id, text))
        questions.extend(_questions(entity, text, rng))
        meta[entity.doc_id] = {
            "kind": entity.spec.kind,
            "group": f"{entity.spec.kind}-{entity.group:04d}",
            "name": entity.name.full,
            "key": entity.name.bare,
        }
    return SynthQA(documents=documents, questions=questions, entities=meta)
