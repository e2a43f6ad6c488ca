"""The person kind of the synthetic QA set: its facts, sentence and question templates."""

from __future__ import annotations

from ragcompress_tools.synthqa.facts import (
    FactSpec,
    KindSpec,
    count,
    fresh,
    pick,
    reference,
    year,
    years_after,
)
from ragcompress_tools.synthqa.kinds.common import COLOURS, PROFESSIONS
from ragcompress_tools.synthqa.names import NamePool

PERSON = KindSpec(
    kind="person",
    weight=0.25,
    make_name=NamePool.person,
    nouns=(),
    pronouns=True,
    intros=(
        "{N} is remembered mainly through letters kept in a regional archive.",
        "This entry gives a short account of the life of {N}.",
        "{N} was a figure of some standing in the region.",
        "Few people outside the district have heard of {N}.",
        "The life of {N} is better documented than most of that era.",
    ),
    facts=(
        FactSpec(
            "birth_year",
            year(1780, 1925),
            (
                "{s} was born in {v}.",
                "{p} birth was registered in {v}.",
                "The parish records give {v} as the year of {p} birth.",
                "{s} came into the world in {v}.",
            ),
            ("In what year was {N} born?", "When was {N} born?", "What is the birth year of {N}?"),
        ),
        FactSpec(
            "death_year",
            years_after("birth_year", 28, 92, latest=2020),
            (
                "{s} died in {v}.",
                "{p} death came in {v}.",
                "{s} passed away in {v} after a short illness.",
                "The year {v} saw the death of {n}.",
            ),
            ("In what year did {N} die?", "When did {N} die?", "What year did {N} pass away?"),
        ),
        FactSpec(
            "birthplace",
            reference("town", NamePool.town, probability=0.8),
            (
                "{s} was born in {v}.",
                "{p} birthplace was {v}.",
                "{s} was a native of {v}.",
                "{v} is where {n} was born.",
            ),
            ("Where was {N} born?", "In which town was {N} born?", "What is the birthplace of {N}?"),
        ),
        FactSpec(
            "profession",
            pick(PROFESSIONS),
            (
                "{s} worked as {av} for most of {p} life.",
                "By trade, {n} was {av}.",
                "{p} profession was that of {av}.",
                "{s} earned a living as {av}.",
            ),
            ("What was {Np} profession?", "What did {N} do for a living?", "What was the occupation of {N}?"),
        ),
        FactSpec(
            "spouse",
            fresh(NamePool.person),
            (
                "{s} married {v}.",
                "{p} spouse was {v}.",
                "{s} was married to {v} for many years.",
                "{v} became {p} spouse after a short courtship.",
            ),
            ("Who was {N} married to?", "Who was the spouse of {N}?", "Whom did {N} marry?"),
        ),
        FactSpec(
            "children",
            count(2, 9),
            (
                "{s} had {v} children.",
                "{p} family eventually included {v} children.",
                "{s} raised {v} children.",
            ),
            ("How many children did {N} have?", "How many children did {N} raise?"),
        ),
        FactSpec(
            "favourite_colour",
            pick(COLOURS),
            (
                "{p} favourite colour was {v}.",
                "{s} was fond of the colour {v}.",
                "Friends recalled that {n} always preferred {v} to any other colour.",
            ),
            ("What was {Np} favourite colour?", "Which colour did {N} like best?"),
        ),
    ),
    fillers=(
        "Little is known about {p} early schooling.",
        "Several of {p} letters survive in private collections.",
        "{s} travelled widely in later years.",
        "A portrait of {n} hangs in a small local museum.",
        "Contemporaries described {n} as patient and exacting.",
        "{s} kept a diary for more than twenty years.",
        "{p} handwriting was famously hard to read.",
        "{s} rarely spoke about {p} childhood.",
    ),
)
