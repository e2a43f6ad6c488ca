"""The town kind of the synthetic QA set: its facts, sentence and question templates."""

from __future__ import annotations

from ragcompress_tools.synthqa.facts import FactSpec, KindSpec, count, fresh, pick, reference, year
from ragcompress_tools.synthqa.kinds.common import INDUSTRIES
from ragcompress_tools.synthqa.names import NamePool

TOWN = KindSpec(
    kind="town",
    weight=0.2,
    make_name=NamePool.town,
    nouns=("the town",),
    intros=(
        "{N} is a town with a long and uneven history.",
        "This article describes the town of {N}.",
        "{N} is a market town known to few travellers.",
        "The town of {N} lies at the end of a long valley road.",
    ),
    facts=(
        FactSpec(
            "founded",
            year(1050, 1890),
            (
                "{s} was founded in {v}.",
                "The first settlers arrived at {n} in {v}.",
                "{p} charter dates from {v}.",
                "{s} received its founding charter in {v}.",
            ),
            (
                "In what year was {N} founded?",
                "When was the town of {N} founded?",
                "What is the founding year of {N}?",
            ),
        ),
        FactSpec(
            "population",
            count(800, 950_000, step=10),
            (
                "{s} has a population of {v}.",
                "About {v} people live in {n}.",
                "The last census counted {v} residents in {n}.",
                "{p} population stands at {v}.",
            ),
            (
                "What is the population of {N}?",
                "How many people live in {N}?",
                "How many residents does {N} have?",
            ),
        ),
        FactSpec(
            "mayor",
            fresh(NamePool.person),
            (
                "The current mayor of {n} is {v}.",
                "{v} serves as mayor of {n}.",
                "{s} is governed by a council led by mayor {v}.",
            ),
            ("Who is the mayor of {N}?", "Who serves as mayor of {N}?"),
        ),
        FactSpec(
            "river",
            reference("river", NamePool.river, probability=0.7),
            (
                "{s} lies on the banks of {v}.",
                "{v} flows through {n}.",
                "{s} grew up around a ford on {v}.",
            ),
            ("Which river flows through {N}?", "On which river does {N} lie?"),
        ),
        FactSpec(
            "province",
            fresh(lambda names: names.place("{} Province")),
            (
                "{s} is part of {v}.",
                "Administratively, {n} belongs to {v}.",
                "{s} sits near the western edge of {v}.",
            ),
            ("Which province is {N} part of?", "In which province does {N} lie?"),
        ),
        FactSpec(
            "industry",
            pick(INDUSTRIES),
            (
                "The main industry of {n} is {v}.",
                "{s} has long depended on {v}.",
                "Most jobs in {n} are connected to {v}.",
            ),
            ("What is the main industry of {N}?", "Which industry is {N} known for?"),
        ),
        FactSpec(
            "elevation",
            count(12, 2400, unit="metres"),
            (
                "{s} sits at an elevation of {v} metres.",
                "{s} lies {v} metres above sea level.",
                "{p} central square lies {v} metres above sea level.",
            ),
            ("At what elevation does {N} lie?", "How high above sea level is {N}?"),
        ),
    ),
    fillers=(
        "{p} old bridge is a favourite subject for painters.",
        "A weekly market is held in {p} main square.",
        "Visitors often remark on the narrow streets of {n}.",
        "{s} was badly flooded at least twice in its history.",
        "The railway reached {n} much later than its neighbours.",
        "{p} church tower can be seen from far away.",
        "A small festival is held in {n} every autumn.",
        "Many of the older houses in {n} are built of local stone.",
    ),
)
