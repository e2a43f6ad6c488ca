"""Building blocks of the out-of-distribution synthetic QA generator (`ood`).

Deliberately written apart from the training generator (`facts`, `names`): another
syllable inventory for invented names, values written in several number and date formats, and facts
described by row labels (for tables and lists), narrative sentences, spoken lines (for interviews) and
question phrasings that paraphrase rather than repeat the document's wording.

Template fields: ``{E}`` the entity (its name, or later a noun such as "the comet"), ``{v}`` the value
as written. Question templates use ``{E}`` for the full name only.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from ragcompress_tools.synthqa.names import split_of

# Answer kinds of this set; each question records one, so scores can be broken down by what is asked.
ANSWER_KINDS = ("name", "number", "year", "date", "term", "code")

# Another phonology than the training names (no shared syllable table), so names look different too.
_STARTS = ("qu", "x", "j", "w", "ch", "ph", "y", "c", "gl", "pl", "fr", "sh", "v", "z", "ix", "ul", "om")
_MIDDLES = ("a", "o", "i", "u", "e", "ai", "au", "ia", "io")
_LINKS = ("ll", "rr", "x", "mb", "nt", "sc", "ph", "qu", "ch", "lv", "nz", "d", "t")
_ENDINGS = ("ane", "ix", "orra", "uma", "ello", "ique", "aya", "ond", "ux", "ira", "eph", "ath")
_UGLY = re.compile(r"(.)\1\1|[aeiou]{3}|[^aeiouy]{4}")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")  # fmt: skip
_SMALL_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                "eighteen", "nineteen", "twenty")  # fmt: skip


@dataclass(frozen=True)
class Value:
    """A fact's value: how the document writes it, and the answers that count (each also written there)."""

    text: str
    answers: tuple[str, ...]  # canonical first
    number: float | None = None  # kept so a hard distractor can draw a nearby number


class Names:
    """Invented words of one split, never handed out twice in a dataset.

    Every word is also checked with the training generator's split hash, so an evaluation split of
    this set can never produce a word that a training set of either generator could contain.
    """

    def __init__(self, split: str, rng: random.Random) -> None:
        self.split, self.rng, self.used = split, rng, set()
        self.first_names = [self.word() for _ in range(40)]

    def word(self) -> str:
        for _ in range(100_000):
            parts = [self.rng.choice(_STARTS), self.rng.choice(_MIDDLES)]
            if self.rng.random() < 0.6:
                parts += [self.rng.choice(_LINKS), self.rng.choice(_MIDDLES)]
            word = "".join(parts) + self.rng.choice(_ENDINGS)
            if 5 <= len(word) <= 11 and not _UGLY.search(word) and word not in self.used:
                if split_of(word) == self.split:
                    self.used.add(word)
                    return word.capitalize()
        raise RuntimeError("invented-word space exhausted; ask for fewer entities")

    def person(self) -> Value:
        first, last = self.rng.choice(self.first_names), self.word()
        # Titles vary so the answer is not always the first words of the name.
        title = self.rng.choice(("", "", "Dr ", "Prof. "))
        return Value(text=f"{title}{first} {last}", answers=(f"{first} {last}", last))


@dataclass
class Draw:
    """What a sampler may use: the dataset's RNG and its pool of invented words."""

    rng: random.Random
    names: Names


# A sampler draws a value; `anchor` is the same fact's value for the first member of the entity's
# group (None for that member), so the group's documents are confusable but never identical.
Sampler = Callable[[Draw, "Value | None"], Value]


@dataclass(frozen=True)
class Fact:
    key: str
    kind: str  # one of ANSWER_KINDS
    sample: Sampler
    labels: tuple[str, ...]  # row labels for tables, fact sheets and lists; the first is a noun phrase
    prose: tuple[str, ...]  # narrative sentences
    said: tuple[str, ...]  # what an interviewee says
    asks: tuple[str, ...]  # question phrasings


@dataclass(frozen=True)
class Kind:
    kind: str
    name: Callable[[Names], tuple[str, str]]  # -> (full name, the invented word alone)
    noun: str  # a later mention: "the comet"
    speaker: str  # who answers in an interview about one
    facts: tuple[Fact, ...]
    asides: tuple[str, ...]  # sentences with no fact, to vary length and position


# --- numbers and dates in several formats ----------------------------------------------------------


def spell_int(number: int, rng: random.Random, words: bool = False, plain: bool = False) -> str:
    """An integer as a document might write it: 12,500 / 12 500 / 12500, or in words when small.

    `plain` numbers (ports, identifiers) are always written as bare digits.
    """
    if words and number <= 20 and rng.random() < 0.5:
        return _SMALL_WORDS[number]
    if number < 1000 or plain:
        return str(number)
    return rng.choice((f"{number:,}", f"{number:,}".replace(",", " "), str(number)))


def _nearby(draw: Draw, anchor: Value | None, lo: float, hi: float) -> float:
    if anchor is None or anchor.number is None:
        return draw.rng.uniform(lo, hi)
    return min(hi, max(lo, anchor.number * draw.rng.uniform(0.75, 1.25)))


def integer(
    lo: int, hi: int, unit: str = "", words: bool = False, step: int = 1, plain: bool = False
) -> Sampler:
    """A whole number; with `unit` the answers also accept the number followed by its unit."""

    def sample(draw: Draw, anchor: Value | None) -> Value:
        number = max(lo, round(_nearby(draw, anchor, lo, hi) / step) * step)
        if anchor is not None and number == anchor.number:
            number = number + step if number + step <= hi else number - step
        text = spell_int(number, draw.rng, words, plain)
        answers = (text, f"{text} {unit}") if unit else (text,)
        return Value(text=text, answers=answers, number=number)

    return sample


def decimal(lo: float, hi: float, places: int, unit: str = "") -> Sampler:
    """A decimal quantity such as 71.4 or 0.83; the unit, if any, is written after it in the document."""

    def sample(draw: Draw, anchor: Value | None) -> Value:
        number = round(_nearby(draw, anchor, lo, hi), places)
        if anchor is not None and number == anchor.number:
            number = round(number + 10**-places, places)
        text = f"{number:.{places}f}"
        answers = (text, f"{text} {unit}") if unit else (text,)
        return Value(text=text, answers=answers, number=number)

    return sample


def year(lo: int, hi: int) -> Sampler:
    def sample(draw: Draw, anchor: Value | None) -> Value:
        if anchor is None or anchor.number is None:
            number = draw.rng.randint(lo, hi)
        else:
            number = int(anchor.number) + draw.rng.choice((-1, 1)) * draw.rng.randint(1, 9)
        return Value(text=str(number), answers=(str(number),), number=number)

    return sample


def date(lo: int, hi: int) -> Sampler:
    """A calendar date in one of four formats; the answer is the date exactly as the document writes it."""

    def sample(draw: Draw, anchor: Value | None) -> Value:
        rng = draw.rng
        y = rng.randint(lo, hi) if anchor is None or anchor.number is None else int(anchor.number)
        m, d = rng.randint(1, 12), rng.randint(1, 28)
        text = rng.choice(
            (
                f"{y}-{m:02d}-{d:02d}",
                f"{d} {_MONTHS[m - 1]} {y}",
                f"{_MONTHS[m - 1]} {d}, {y}",
                f"{d:02d}.{m:02d}.{y}",
            )
        )
        return Value(text=text, answers=(text,), number=y)

    return sample


def choice(options: tuple[str, ...], share: float = 0.5) -> Sampler:
    """One of `options`; a hard distractor shares its anchor's choice with probability `share`."""

    def sample(draw: Draw, anchor: Value | None) -> Value:
        if anchor is not None and draw.rng.random() < share:
            return anchor
        text = draw.rng.choice(options)
        return Value(text=text, answers=(text,))

    return sample


def invented(pattern: str) -> Sampler:
    """A new invented name in a pattern such as "{} Observatory"; the bare word is also accepted."""

    def sample(draw: Draw, anchor: Value | None) -> Value:
        word = draw.names.word()
        text = pattern.format(word)
        return Value(text=text, answers=tuple(dict.fromkeys((text.removeprefix("the "), word))))

    return sample


def person() -> Sampler:
    return lambda draw, anchor: draw.names.person()


def code(make: Callable[[random.Random, Names], str]) -> Sampler:
    """An identifier (a version, a catalogue number, a file name) built by `make`; answered verbatim."""

    def sample(draw: Draw, anchor: Value | None) -> Value:
        text = make(draw.rng, draw.names)
        return Value(text=text, answers=(text,))

    return sample


_FIELD = re.compile(r"\{([^{}]*)\}")


def pattern(template: str) -> Sampler:
    """A `code` drawn field by field, left to right: ``{10-99}`` an integer in that range, ``{MS|Lat.}``
    one of the options, ``{[ABC]}`` one of the letters; text outside braces is kept as it is."""
    parts = _FIELD.split(template)  # text, field, text, field, ..., text

    def make(rng: random.Random, names: Names) -> str:
        out = []
        for index, part in enumerate(parts):
            if index % 2 == 0:
                out.append(part)
            elif part.startswith("["):
                out.append(rng.choice(part[1:-1]))
            elif "|" in part:
                out.append(rng.choice(part.split("|")))
            else:
                low, high = part.split("-")
                out.append(str(rng.randint(int(low), int(high))))
        return "".join(out)

    return code(make)
