"""The out-of-distribution synthetic QA set, `generate(..., style="ood")`: for evaluation only.

The default model is trained (stage 2) on the training generator's documents and scores well on its
test split, which shares that generator's templates. This set measures what is left when nothing but
the idea is shared: other entity kinds (comets, dams, compounds, festivals, software, manuscripts;
`ood_science`, `ood_culture`), other document shapes (a Markdown table, a fact sheet
with dotted leaders, a bullet list, narrative prose, an interview transcript, prose plus a list),
numbers and dates in several formats, and questions that paraphrase the document instead of echoing
it. Names come from another syllable inventory (`ood_parts.Names`).

It must never become training data: only the "dev" and "test" name splits exist, and every question
carries `"heldout": "synthqa-ood"`, which the stage-2 loader refuses (`ragcompress.eval.heldout`).
Each question also records `kind` (the answer kind) and `shape` (the document's layout).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ragcompress.eval.heldout import HELDOUT_FIELD
from ragcompress_tools.synthqa.ood_culture import FESTIVAL, MANUSCRIPT, SOFTWARE
from ragcompress_tools.synthqa.ood_parts import Draw, Fact, Kind, Names, Value
from ragcompress_tools.synthqa.ood_science import COMET, COMPOUND, DAM

STYLE = "ood"
HELDOUT_TAG = "synthqa-ood"
SPLITS = ("dev", "test")  # no "train": this set is never trained on
KINDS: tuple[Kind, ...] = (COMET, DAM, COMPOUND, FESTIVAL, SOFTWARE, MANUSCRIPT)
SHAPES = ("table", "sheet", "bullets", "narrative", "dialogue", "mixed")
# Later mentions use the kind's noun ("the comet") this often, so a name is not always the subject.
NOUN_SHARE = 0.35

_INTROS = (
    "What follows is what we know about {E}.",
    "Notes on {E}, gathered from several reports.",
    "{E} has a short but busy record.",
    "A few plain facts about {E} are worth setting down.",
)
_TABLE_TITLES = ("{E} at a glance", "Reference card: {E}", "Key data for {E}", "{E}")
_TABLE_HEADS = ("| Field | Value |", "| Item | Detail |", "| Property | Entry |")
_LIST_TITLES = ("Quick facts on {E}:", "{E}, in brief:", "Essentials ({E}):")
_BULLETS = ("- ", "* ", "• ")
_PROMPTS = ("What about the {l}?", "And the {l}?", "Can you tell me the {l}?", "Let's talk about the {l}.")
_DIALOGUE_OPENINGS = (
    "Transcript of a conversation with {S} about {E}.",
    "Interview notes. Subject: {E}. Speaking: {S}.",
    "We put a few questions about {E} to {S}.",
)


@dataclass
class _Entity:
    doc_id: str
    kind: Kind
    full: str
    key: str  # the invented word alone, unique in the dataset
    group: int
    facts: list[Fact] = field(default_factory=list)  # those the document states
    values: dict[str, Value] = field(default_factory=dict)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _make_entities(split: str, n_entities: int, rng: random.Random) -> list[_Entity]:
    names = Names(split, rng)
    draw = Draw(rng=rng, names=names)
    counts = [n_entities // len(KINDS) + (i < n_entities % len(KINDS)) for i in range(len(KINDS))]
    entities: list[_Entity] = []
    for kind, n in zip(KINDS, counts):
        group, left, anchor = -1, 0, None
        for j in range(n):
            full, key = kind.name(names)
            entity = _Entity(f"ood-{split}-{kind.kind}-{j:04d}", kind, full, key, group)
            if left == 0:  # a new group of 2-3 confusable entities of one kind
                group, left, anchor = group + 1, rng.choice((2, 3)), entity
                entity.group = group
                entity.facts = rng.sample(kind.facts, rng.randint(4, len(kind.facts)))
            else:  # a hard distractor: the same facts as its group's first member, values close to its
                entity.group = group
                entity.facts = list(anchor.facts)
            left -= 1
            for fact in kind.facts:
                entity.values[fact.key] = fact.sample(
                    draw, anchor.values[fact.key] if anchor is not entity else None
                )
            entities.append(entity)
    return entities


def _refer(entity: _Entity, rng: random.Random, first: bool) -> str:
    return entity.full if first or rng.random() >= NOUN_SHARE else entity.kind.noun


def _fill(template: str, entity: _Entity, rng: random.Random, first: bool, value: str = "") -> str:
    return _capital(template.format(E=_refer(entity, rng, first), v=value, S=entity.kind.speaker))


def _row(fact: Fact, value: Value, rng: random.Random) -> tuple[str, str]:
    """(label, value as written): a label with a unit in brackets takes the bare number."""
    label = rng.choice(fact.labels)
    with_unit = (
        value.answers[-1]
        if len(value.answers) > 1 and value.answers[-1].startswith(value.text + " ")
        else None
    )
    written = with_unit if with_unit and "(" not in label else value.text
    return label, written


def _table(entity: _Entity, facts: list[Fact], rng: random.Random) -> list[str]:
    rows = [_row(f, entity.values[f.key], rng) for f in facts]
    lines = [
        _capital(rng.choice(_TABLE_TITLES).format(E=entity.full)),
        "",
        rng.choice(_TABLE_HEADS),
        "|---|---|",
    ]
    lines += [f"| {label} | {value} |" for label, value in rows]
    return [*lines, "", "Note: " + rng.choice(entity.kind.asides)]


def _sheet(entity: _Entity, facts: list[Fact], rng: random.Random) -> list[str]:
    rows = [_row(f, entity.values[f.key], rng) for f in facts]
    width = max(len(label) for label, _ in rows) + 4
    title = _capital(entity.full).upper() if rng.random() < 0.5 else _capital(entity.full)
    return [title, "=" * len(title), *(f"{(label + ' ').ljust(width, '.')} {value}" for label, value in rows)]


def _bullets(entity: _Entity, facts: list[Fact], rng: random.Random) -> list[str]:
    mark, sep = rng.choice(_BULLETS), rng.choice((": ", " — ", " = "))
    rows = [_row(f, entity.values[f.key], rng) for f in facts]
    return [
        _capital(rng.choice(_LIST_TITLES).format(E=entity.full)),
        *(f"{mark}{label}{sep}{value}" for label, value in rows),
    ]


def _narrative(entity: _Entity, facts: list[Fact], rng: random.Random, intro: bool = True) -> list[str]:
    sentences = [_fill(rng.choice(f.prose), entity, rng, False, entity.values[f.key].text) for f in facts]
    sentences.insert(rng.randint(0, len(sentences)), rng.choice(entity.kind.asides))
    if intro:
        sentences.insert(0, _fill(rng.choice(_INTROS), entity, rng, True))
    cut = rng.randint(2, max(2, len(sentences) - 1))  # two paragraphs of uneven length
    return (
        [" ".join(sentences[:cut]), "", " ".join(sentences[cut:])]
        if cut < len(sentences)
        else [" ".join(sentences)]
    )


def _dialogue(entity: _Entity, facts: list[Fact], rng: random.Random) -> list[str]:
    who = rng.choice((("Q", "A"), ("Interviewer", "Guest"), ("ME", "THEM")))
    lines = [_fill(rng.choice(_DIALOGUE_OPENINGS), entity, rng, True), ""]
    for fact in facts:
        label = fact.labels[0].split(" (")[0].lower()  # the interviewer names the topic, not a row label
        lines.append(f"{who[0]}: " + rng.choice(_PROMPTS).format(l=label))
        lines.append(f"{who[1]}: " + _capital(rng.choice(fact.said).format(v=entity.values[fact.key].text)))
    lines[-2:-2] = [
        f"{who[0]}: Anything else people should know?",
        f"{who[1]}: {rng.choice(entity.kind.asides)}",
    ]
    return lines


def _render(entity: _Entity, shape: str, rng: random.Random) -> str:
    facts = rng.sample(entity.facts, len(entity.facts))  # a fresh order per document
    if shape == "mixed":  # prose for some facts, then a list of the rest
        cut = rng.randint(1, len(facts) - 1)
        lines = _narrative(entity, facts[:cut], rng) + [""] + _bullets(entity, facts[cut:], rng)
    else:
        render = {
            "table": _table,
            "sheet": _sheet,
            "bullets": _bullets,
            "narrative": _narrative,
            "dialogue": _dialogue,
        }
        lines = render[shape](entity, facts, rng)
    return "\n".join(lines)


def _answers_in(value: Value, document: str, where: str) -> list[str]:
    """The value's answers that the document writes verbatim; the canonical one must be among them."""
    present = [answer for answer in value.answers if answer in document]
    if value.answers[0] not in present:
        raise AssertionError(f"{where}: answer {value.answers[0]!r} is not in the document")
    return present


def make(split: str, n_entities: int, seed: int) -> tuple[list[tuple[str, str]], list[dict], dict[str, dict]]:
    """(documents, questions, entities) of an out-of-distribution set; see `generator.generate`."""
    if split not in SPLITS:
        raise ValueError(f"style {STYLE!r} has splits {', '.join(SPLITS)} only: it is never training data")
    if n_entities < 1:
        raise ValueError("n_entities must be at least 1")
    rng = random.Random(f"ragcompress-synthqa-ood/{split}/{seed}")
    documents, questions, entities = [], [], {}
    for entity in sorted(_make_entities(split, n_entities, rng), key=lambda e: e.doc_id):
        shape = rng.choice(SHAPES)
        text = _render(entity, shape, rng)
        documents.append((entity.doc_id, text))
        for i, fact in enumerate(rng.sample(entity.facts, rng.randint(1, min(3, len(entity.facts))))):
            question = _capital(rng.choice(fact.asks).format(E=entity.full))
            answers = _answers_in(entity.values[fact.key], text, f"{entity.doc_id}/{fact.key}")
            questions.append(
                {
                    "id": f"{entity.doc_id}-q{i}",
                    "question": question,
                    "answers": answers,
                    "doc_ids": [entity.doc_id],
                    "kind": fact.kind,
                    "shape": shape,
                    HELDOUT_FIELD: HELDOUT_TAG,
                }
            )
        entities[entity.doc_id] = {
            "kind": entity.kind.kind,
            "group": f"{entity.kind.kind}-{entity.group:04d}",
            "name": entity.full,
            "key": entity.key,
        }
    return documents, questions, entities
