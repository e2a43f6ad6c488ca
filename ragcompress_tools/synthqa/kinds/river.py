"""The river kind of the synthetic QA set: its facts, sentence and question templates."""

from __future__ import annotations

from ragcompress_tools.synthqa.facts import FactSpec, KindSpec, count, fresh, reference, year
from ragcompress_tools.synthqa.names import NamePool

RIVER = KindSpec(
    kind="river",
    weight=0.1,
    make_name=NamePool.river,
    nouns=("the river",),
    intros=(
        "{N} is a river of moderate size.",
        "This entry describes {N}.",
        "{N} winds through farmland for most of its course.",
    ),
    facts=(
        FactSpec(
            "length",
            count(40, 3200, unit="kilometres"),
            (
                "{s} is {v} kilometres long.",
                "{p} total length is {v} kilometres.",
                "{s} runs for {v} kilometres.",
            ),
            ("How long is {N}?", "What is the length of {N}?"),
        ),
        FactSpec(
            "source",
            reference("mountain", NamePool.mountain, probability=0.7),
            (
                "{s} rises on the slopes of {v}.",
                "The source of {n} lies on {v}.",
                "{s} begins as a spring high on {v}.",
            ),
            (
                "Where does {N} rise?",
                "Where is the source of {N}?",
                "On which mountain does {N} have its source?",
            ),
        ),
        FactSpec(
            "mouth",
            fresh(lambda names: names.place(names.rng.choice(("Lake {}", "the {} Sea")))),
            (
                "{s} empties into {v}.",
                "{s} flows into {v}.",
                "Eventually {n} reaches {v}.",
            ),
            ("Into what does {N} flow?", "Where does {N} end?", "What does {N} empty into?"),
        ),
        FactSpec(
            "bridges",
            count(2, 60),
            (
                "{v} bridges cross {n}.",
                "{s} is crossed by {v} bridges.",
                "There are {v} bridges over {n}.",
            ),
            ("How many bridges cross {N}?", "How many bridges span {N}?"),
        ),
        FactSpec(
            "named_after",
            reference("person", NamePool.person, probability=0.3),
            (
                "{s} is named after {v}.",
                "{s} takes its name from {v}.",
                "{p} name honours {v}.",
            ),
            ("Who is {N} named after?", "After whom is {N} named?"),
        ),
        FactSpec(
            "first_mapped",
            year(1600, 1900),
            (
                "{s} was first mapped in {v}.",
                "The first map of {n} was drawn in {v}.",
                "Surveyors charted {n} for the first time in {v}.",
            ),
            ("When was {N} first mapped?", "In what year was {N} first mapped?"),
        ),
    ),
    fillers=(
        "{s} sometimes freezes over in hard winters.",
        "Anglers prize the quiet stretches of {n}.",
        "{p} water is unusually clear.",
        "Barges once carried grain along {n}.",
        "Several old mills stand along the banks of {n}.",
        "{s} floods its meadows almost every spring.",
        "Herons nest in the reeds along {n}.",
    ),
)
