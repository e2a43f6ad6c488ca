"""A synthetic retrieval-QA set about invented entities, in the evaluation data format of docs/design.md.

No QA set ships offline, so we generate one. It serves twice: to train the default model's answer
format (read summary vectors of k passages, then a question, answer briefly) and to measure EM/F1 for
no retrieval, full-text passages and fused summary vectors. Because every name is invented (see
`synthqa_names`), the base LM cannot answer from memory: a correct answer has to come from a passage.

Each entity (person, town, company, ship, river, mountain) becomes one document of ~60-180 words:
an intro, its 4-7 facts in random order and wording, and a filler sentence or two. Entities come in
small groups of the same kind with the same fact types and nearby values (hard distractors), and many
documents name other entities (a person's birthplace is a generated town).

On disk (`write`/`read`): `corpus/<doc_id>.txt`, `questions.jsonl` with
`{"id", "question", "answers": [...], "doc_ids": [...]}` per line, and for generated sets an extra
`entities.jsonl` (kind and group per document) that `training_examples` uses to pick hard distractors.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ragcompress.eval import synthqa_ood
from ragcompress.eval.qa_metrics import normalize_answer
from ragcompress.eval.synthqa_examples import training_examples
from ragcompress.eval.synthqa_facts import Context, KindSpec, Value, with_article
from ragcompress.eval.synthqa_kinds import CONFUSION_SENTENCES, GENERIC_FILLERS, KINDS
from ragcompress.eval.synthqa_names import EntityName, NamePool

# Each document is padded with filler to a random length in this range (words), so that length says
# nothing about content; facts alone are 40-90 words.
MIN_WORDS, MAX_TARGET_WORDS = 60, 140
# Share of documents that name another entity of their group ("not to be confused with ...").
CONFUSION_SHARE = 0.4
# People are referred to by pronoun in this share of later sentences, other things by "the town" etc.
PRONOUN_SHARE, NOUN_SHARE = 0.4, 0.35


__all__ = ["STYLES", "DatasetFormatError", "SynthQA", "generate", "read", "training_examples", "write"]


class DatasetFormatError(ValueError):
    """A QA dataset on disk does not follow the evaluation data format; the message names file and line."""


@dataclass
class SynthQA:
    """A QA dataset: documents, questions about them, and (for generated sets) what each document is."""

    documents: list[tuple[str, str]]  # (doc_id, text), sorted by doc_id
    questions: list[dict]  # {"id", "question", "answers": [...], "doc_ids": [...]}
    # doc_id -> {"kind", "group", "name", "key"}; empty for datasets that come without entities.jsonl
    entities: dict[str, dict] = field(default_factory=dict)


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
    `style="ood"` gives the out-of-distribution evaluation set of `synthqa_ood` instead: other entity
    kinds, document shapes and question phrasings, "dev"/"test" only, and refused as training data.
    """
    if style == "ood":
        documents, questions, meta = synthqa_ood.make(split, n_entities, seed)
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


# --- the evaluation data format on disk ----------------------------------------------------------------


def write(dataset: SynthQA, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write `corpus/<doc_id>.txt`, `questions.jsonl` (and `entities.jsonl` if known) under `out_dir`.

    The same dataset always gives byte-identical files. An existing dataset there is an error unless
    `overwrite`, which first removes its `corpus/*.txt` so no stale document survives.
    """
    root = Path(out_dir)
    corpus = root / "corpus"
    stale = sorted(corpus.glob("*.txt")) if corpus.is_dir() else []
    if (stale or (root / "questions.jsonl").exists()) and not overwrite:
        raise FileExistsError(f"{root} already holds a QA dataset; pass overwrite=True to replace it")
    for path in stale:
        path.unlink()
    corpus.mkdir(parents=True, exist_ok=True)
    for doc_id, text in dataset.documents:
        if not doc_id or Path(doc_id).name != doc_id or doc_id.startswith("."):
            raise ValueError(f"doc_id {doc_id!r} cannot be a file name")
        (corpus / f"{doc_id}.txt").write_text(text + "\n", encoding="utf-8", newline="\n")
    entities_path = root / "entities.jsonl"
    if dataset.entities:
        _write_jsonl(entities_path, [{"doc_id": doc_id, **meta} for doc_id, meta in dataset.entities.items()])
    elif entities_path.exists():
        entities_path.unlink()
    _write_jsonl(root / "questions.jsonl", dataset.questions)  # last: a complete dataset once it exists
    return root


def _write_jsonl(path: Path, records: Iterable[dict]) -> None:
    """Write to a temporary file and rename it into place, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(partial, path)


def read(out_dir: str | Path) -> SynthQA:
    """Load a QA dataset in the evaluation data format (ours or any user's).

    Malformed input raises `DatasetFormatError` with one line naming the file (and line) at fault.
    """
    root = Path(out_dir)
    corpus, questions_path = root / "corpus", root / "questions.jsonl"
    if not corpus.is_dir():
        raise DatasetFormatError(f"{corpus}: corpus directory not found")
    if not questions_path.is_file():
        raise DatasetFormatError(f"{questions_path}: file not found")
    documents = []
    for path in sorted(corpus.glob("*.txt"), key=lambda p: p.stem):
        try:
            documents.append((path.stem, path.read_text(encoding="utf-8").strip()))
        except UnicodeDecodeError as error:
            raise DatasetFormatError(f"{path}: not UTF-8 text ({error.reason})") from None
    questions = read_questions(questions_path, {doc_id for doc_id, _ in documents})
    entities = {}
    if (root / "entities.jsonl").is_file():
        for record, where in _read_jsonl(root / "entities.jsonl"):
            fields = ("doc_id", "kind", "group", "name", "key")
            if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in fields):
                raise DatasetFormatError(
                    f"{where}: expected an object with string fields {', '.join(fields)}"
                )
            entities[record["doc_id"]] = {k: record[k] for k in fields[1:]}
    return SynthQA(documents=documents, questions=questions, entities=entities)


def read_questions(path: str | Path, known_doc_ids: set[str] | None = None) -> list[dict]:
    """The questions of a `questions.jsonl`, checked line by line (`DatasetFormatError` names the line).

    Gold doc ids are checked against `known_doc_ids` when given; a caller that only learns the corpus's
    ids later (from an index of it) passes None and checks them itself.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found")
    seen: set[str] = set()
    return [_checked_question(r, where, known_doc_ids, seen) for r, where in _read_jsonl(path)]


def _read_jsonl(path: Path) -> Iterator[tuple[object, str]]:
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                yield json.loads(line), where
            except json.JSONDecodeError as error:
                raise DatasetFormatError(
                    f"{where}: invalid JSON ({error.msg}, column {error.colno})"
                ) from None


def _checked_question(
    record: object, where: str, known_doc_ids: set[str] | None, seen_ids: set[str]
) -> dict:
    def fail(problem: str) -> DatasetFormatError:
        return DatasetFormatError(f"{where}: {problem}")

    if not isinstance(record, dict):
        raise fail(f"expected a JSON object, got {type(record).__name__}")
    for key in ("id", "question", "answers", "doc_ids"):
        if key not in record:
            raise fail(f"missing key {key!r}")
    question_id = record["id"]
    # Integer ids are common in user data; they are read as strings so ids compare one way.
    if isinstance(question_id, bool) or not isinstance(question_id, str | int):
        raise fail("'id' must be a string or an integer")
    question_id = str(question_id)
    if question_id in seen_ids:
        raise fail(f"duplicate question id {question_id!r}")
    seen_ids.add(question_id)
    if not isinstance(record["question"], str) or not record["question"].strip():
        raise fail("'question' must be a non-empty string")
    answers = record["answers"]
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        raise fail("'answers' must be a non-empty list of strings")
    doc_ids = record["doc_ids"]
    if not isinstance(doc_ids, list) or not all(isinstance(d, str) for d in doc_ids):
        raise fail("'doc_ids' must be a list of strings")
    for doc_id in doc_ids:
        if known_doc_ids is not None and doc_id not in known_doc_ids:
            raise fail(f"doc_id {doc_id!r} has no file corpus/{doc_id}.txt")
    extra = {k: v for k, v in record.items() if k not in ("id", "question", "answers", "doc_ids")}
    return {
        "id": question_id,
        "question": record["question"],
        "answers": answers,
        "doc_ids": doc_ids,
        **extra,
    }
