"""The mountain kind of the synthetic QA set: its facts, sentence and question templates."""

from __future__ import annotations

from ragcompress_tools.synthqa.facts import FactSpec, KindSpec, count, fresh, pick, reference, year
from ragcompress_tools.synthqa.kinds.common import COLOURS
from ragcompress_tools.synthqa.names import NamePool

MOUNTAIN = KindSpec(
    kind="mountain",
    weight=0.15,
    make_name=NamePool.mountain,
    nouns=("the mountain", "the peak"),
    intros=(
        "{N} is a mountain that dominates the surrounding valleys.",
        "This entry describes {N}.",
        "{N} is a peak well known to local climbers.",
    ),
    facts=(
        FactSpec(
            "height",
            count(1200, 8400, unit="metres"),
            (
                "{s} rises to {v} metres.",
                "{s} is {v} metres high.",
                "The summit of {n} stands {v} metres above sea level.",
            ),
            ("How high is {N}?", "What is the height of {N}?", "How tall is {N}?"),
        ),
        FactSpec(
            "first_ascent",
            year(1820, 1960),
            (
                "{s} was first climbed in {v}.",
                "The first ascent of {n} was made in {v}.",
                "Nobody reached the summit of {n} until {v}.",
            ),
            ("When was {N} first climbed?", "In what year was the first ascent of {N}?"),
        ),
        FactSpec(
            "first_climber",
            reference("person", NamePool.person, probability=0.3),
            (
                "{v} was the first to reach the summit of {n}.",
                "{s} was first climbed by {v}.",
                "The first ascent of {n} is credited to {v}.",
            ),
            ("Who first climbed {N}?", "Who made the first ascent of {N}?"),
        ),
        FactSpec(
            "range",
            fresh(lambda names: names.place("the {} Range")),
            (
                "{s} belongs to {v}.",
                "{s} is the highest point of {v}.",
                "{s} is part of {v}.",
            ),
            ("Which range does {N} belong to?", "What mountain range is {N} part of?"),
        ),
        FactSpec(
            "glaciers",
            count(2, 40),
            (
                "{v} glaciers cover the upper slopes of {n}.",
                "{s} has {v} glaciers.",
                "The slopes of {n} hold {v} glaciers.",
            ),
            ("How many glaciers does {N} have?", "How many glaciers are on {N}?"),
        ),
        FactSpec(
            "nearest_town",
            reference("town", NamePool.town, probability=0.8),
            (
                "The nearest town to {n} is {v}.",
                "{v} is the closest town to {n}.",
                "Climbers usually set out for {n} from {v}.",
            ),
            ("What is the nearest town to {N}?", "Which town lies closest to {N}?"),
        ),
        FactSpec(
            "rock_colour",
            pick(COLOURS),
            (
                "{p} rock is a distinctive {v}.",
                "From a distance {n} looks {v}.",
            ),
            ("What colour is the rock of {N}?", "What colour is {Np} rock?"),
        ),
    ),
    fillers=(
        "{s} is often hidden in cloud.",
        "Several climbing routes lead to the summit of {n}.",
        "Wild goats graze on {p} lower slopes.",
        "A stone hut near the summit of {n} shelters climbers.",
        "{p} north face is considered dangerous in winter.",
        "On clear days {n} can be seen from far across the plain.",
    ),
)
