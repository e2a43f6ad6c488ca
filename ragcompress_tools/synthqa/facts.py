"""Building blocks of the synthetic QA set: fact values, how they are drawn, and kind descriptions.

A kind (person, town, ...) lists its facts; each fact has a sampler, several sentence templates and
several question templates. Templates are `str.format` strings with these fields:

    {s}  the subject of a sentence: a name or, for people, a pronoun ("Osk", "she", "the town")
    {n}  the thing named where a pronoun would not read well ("Osk", "the town")
    {p}  possessive ("Osk's", "her", "the town's")
    {v}  the fact's value as written ("12,400", "Brennomar")
    {av} the value with its indefinite article ("an architect", "a clockmaker")
    {N}, {Np}, {B}  in intros and questions: full name, its possessive, the bare invented word
    {O}  in "not to be confused with" sentences: the other entity's full name

Sentences are capitalised after filling, so a template may start with a field.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ragcompress_tools.synthqa.names import EntityName, NamePool


@dataclass(frozen=True)
class Value:
    """One fact's value: how the document writes it and which answers are acceptable."""

    text: str
    answers: tuple[str, ...]  # canonical first
    number: int | None = None  # kept so related entities can draw nearby numbers


@dataclass
class Context:
    """What a sampler may draw on: the dataset's RNG, its name pool and all entities' names."""

    rng: random.Random
    names: NamePool
    entities: dict[str, list[EntityName]] = field(default_factory=dict)  # kind -> names
    self_name: EntityName | None = None  # the entity being described, never its own reference


# A sampler draws a value; `anchor` is the value of the same fact in the entity's hard-distractor group
# (or None for the group's first member), `drawn` the entity's values drawn so far.
Sampler = Callable[[Context, "Value | None", dict[str, Value]], Value]


@dataclass(frozen=True)
class FactSpec:
    key: str
    sample: Sampler
    sentences: tuple[str, ...]
    questions: tuple[str, ...]


@dataclass(frozen=True)
class KindSpec:
    kind: str
    weight: float  # share of the dataset's entities
    make_name: Callable[[NamePool], EntityName]
    nouns: tuple[str, ...]  # later mentions that are not the name: "the town", "the firm"
    intros: tuple[str, ...]
    facts: tuple[FactSpec, ...]
    fillers: tuple[str, ...]
    pronouns: bool = False  # people are "he"/"she" in later sentences

    def fact(self, key: str) -> FactSpec:
        return next(f for f in self.facts if f.key == key)


def with_article(text: str) -> str:
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


def _number_value(number: int, unit: str = "", thousands: bool = True) -> Value:
    written = f"{number:,}" if thousands else str(number)
    answers = [written, str(number)]
    if unit:
        answers.append(f"{written} {unit}")
    return Value(text=written, answers=tuple(dict.fromkeys(answers)), number=number)


def year(lo: int, hi: int) -> Sampler:
    """A year; group members get a different year within a dozen of the anchor (confusable, not equal)."""

    def sample(ctx: Context, anchor: Value | None, drawn: dict[str, Value]) -> Value:
        if anchor is None or anchor.number is None:
            return _number_value(ctx.rng.randint(lo, hi), thousands=False)
        offset = ctx.rng.randint(1, 12) * ctx.rng.choice((-1, 1))
        return _number_value(anchor.number + offset, thousands=False)

    return sample


def years_after(key: str, lo: int, hi: int, latest: int) -> Sampler:
    """A year `lo`..`hi` years after the entity's fact `key` (a death after the birth), at most `latest`."""

    def sample(ctx: Context, anchor: Value | None, drawn: dict[str, Value]) -> Value:
        start = drawn[key].number
        assert start is not None, f"{key} must be drawn before the years after it"
        return _number_value(min(start + ctx.rng.randint(lo, hi), max(latest, start + lo)), thousands=False)

    return sample


def count(lo: int, hi: int, step: int = 1, unit: str = "") -> Sampler:
    """A quantity, rounded to `step`; group members get a different value within ±40% of the anchor."""

    def draw(ctx: Context, low: float, high: float) -> int:
        value = ctx.rng.randint(max(lo, int(low)), max(lo, min(hi, int(high))))
        return max(step, value // step * step)

    def sample(ctx: Context, anchor: Value | None, drawn: dict[str, Value]) -> Value:
        if anchor is None or anchor.number is None:
            return _number_value(draw(ctx, lo, hi), unit)
        for _ in range(20):
            number = draw(ctx, anchor.number * 0.6, anchor.number * 1.4)
            if number != anchor.number:
                return _number_value(number, unit)
        return _number_value(anchor.number + step, unit)

    return sample


def pick(options: tuple[str, ...]) -> Sampler:
    """One of `options`; group members share the anchor's choice half of the time."""

    def sample(ctx: Context, anchor: Value | None, drawn: dict[str, Value]) -> Value:
        if anchor is not None and ctx.rng.random() < 0.5:
            return anchor
        choice = ctx.rng.choice(options)
        return Value(text=choice, answers=(choice,))

    return sample


def _name_value(name: EntityName) -> Value:
    return Value(text=name.full, answers=name.answers)


def fresh(make: Callable[[NamePool], EntityName]) -> Sampler:
    """A newly invented name (a spouse, a province): never shared, so its question has one answer."""

    def sample(ctx: Context, anchor: Value | None, drawn: dict[str, Value]) -> Value:
        return _name_value(make(ctx.names))

    return sample


def reference(kind: str, fallback: Callable[[NamePool], EntityName], probability: float = 1.0) -> Sampler:
    """Another entity of the dataset (a person's birthplace is one of the generated towns).

    Cross references make documents mention each other, so retrieval by name alone is not enough.
    Only the referring document states the relation, so the answer stays in one gold document.
    With `1 - probability`, or when the dataset has no entity of `kind`, a fresh name is invented.
    """

    def sample(ctx: Context, anchor: Value | None, drawn: dict[str, Value]) -> Value:
        if anchor is not None and ctx.rng.random() < 0.5:
            return anchor
        candidates = [name for name in ctx.entities.get(kind, []) if name != ctx.self_name]
        if candidates and ctx.rng.random() < probability:
            return _name_value(ctx.rng.choice(candidates))
        return _name_value(fallback(ctx.names))

    return sample
