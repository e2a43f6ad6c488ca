"""The company kind of the synthetic QA set: its facts, sentence and question templates."""

from __future__ import annotations

from ragcompress_tools.synthqa.facts import FactSpec, KindSpec, count, fresh, pick, reference, year
from ragcompress_tools.synthqa.kinds.common import COLOURS, PRODUCTS
from ragcompress_tools.synthqa.names import NamePool

COMPANY = KindSpec(
    kind="company",
    weight=0.15,
    make_name=NamePool.company,
    nouns=("the company", "the firm"),
    intros=(
        "{N} is a company with a modest but loyal customer base.",
        "This entry concerns the firm {N}.",
        "{N} began as a small workshop and grew steadily.",
        "{N} is a manufacturer that rarely appears in the press.",
    ),
    facts=(
        FactSpec(
            "founded",
            year(1820, 1990),
            (
                "{s} was founded in {v}.",
                "{s} opened its first workshop in {v}.",
                "The story of {n} begins in {v}.",
                "{p} founding year is {v}.",
            ),
            ("In what year was {N} founded?", "When was {N} established?"),
        ),
        FactSpec(
            "founder",
            reference("person", NamePool.person, probability=0.4),
            (
                "{s} was founded by {v}.",
                "{v} founded {n}.",
                "The founder of {n} was {v}.",
            ),
            ("Who founded {N}?", "Who was the founder of {N}?"),
        ),
        FactSpec(
            "headquarters",
            reference("town", NamePool.town, probability=0.8),
            (
                "{s} has its headquarters in {v}.",
                "{p} head office is in {v}.",
                "{s} is based in {v}.",
            ),
            (
                "Where is {N} headquartered?",
                "In which town is {N} based?",
                "Where is the head office of {N}?",
            ),
        ),
        FactSpec(
            "employees",
            count(40, 85_000),
            (
                "{s} employs {v} people.",
                "{p} workforce numbers {v}.",
                "Some {v} people work for {n}.",
            ),
            ("How many people does {N} employ?", "How many employees does {N} have?"),
        ),
        FactSpec(
            "product",
            pick(PRODUCTS),
            (
                "{s} is best known for its {v}.",
                "{s} makes {v}.",
                "{p} main product is {v}.",
            ),
            ("What does {N} make?", "What is the main product of {N}?", "What is {N} best known for making?"),
        ),
        FactSpec(
            "logo_colour",
            pick(COLOURS),
            (
                "{p} logo is {v}.",
                "The logo of {n} is printed in {v}.",
            ),
            ("What colour is the logo of {N}?", "What colour is {Np} logo?"),
        ),
        FactSpec(
            "chief_executive",
            fresh(NamePool.person),
            (
                "{s} is run by {v}.",
                "{v} is the chief executive of {n}.",
                "These days {n} is led by {v}.",
            ),
            ("Who runs {N}?", "Who is the chief executive of {N}?"),
        ),
    ),
    fillers=(
        "{s} has survived several changes of ownership.",
        "{p} catalogue is still printed on paper.",
        "A small museum displays early products of {n}.",
        "{s} once came close to bankruptcy.",
        "{p} early advertisements are now collectors' items.",
        "{s} has never been listed on a stock exchange.",
        "Former employees of {n} still meet once a year.",
    ),
)
