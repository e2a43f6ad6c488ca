"""The ship kind of the synthetic QA set: its facts, sentence and question templates."""

from __future__ import annotations

from ragcompress_tools.synthqa.facts import FactSpec, KindSpec, count, pick, reference, year
from ragcompress_tools.synthqa.kinds.common import COLOURS
from ragcompress_tools.synthqa.names import NamePool

SHIP = KindSpec(
    kind="ship",
    weight=0.15,
    make_name=NamePool.ship,
    nouns=("the ship", "the vessel"),
    intros=(
        "{N} is a ship with an unusual history.",
        "This entry describes the vessel {B}.",
        "{N} was among the better-known vessels of her port.",
        "Sailors still tell stories about {N}.",
    ),
    facts=(
        FactSpec(
            "launched",
            year(1850, 1975),
            (
                "{s} was launched in {v}.",
                "{s} first took to the water in {v}.",
                "{p} launch took place in {v}.",
            ),
            ("In what year was {N} launched?", "When was {N} launched?"),
        ),
        FactSpec(
            "captain",
            reference("person", NamePool.person, probability=0.3),
            (
                "{s} was commanded by Captain {v}.",
                "{v} served as captain of {n}.",
                "The captain of {n} was {v}.",
            ),
            ("Who was the captain of {N}?", "Who commanded {N}?"),
        ),
        FactSpec(
            "home_port",
            reference("town", NamePool.town, probability=0.8),
            (
                "{p} home port was {v}.",
                "{s} sailed out of {v}.",
                "{s} was registered in the port of {v}.",
            ),
            ("What was the home port of {N}?", "From which port did {N} sail?"),
        ),
        FactSpec(
            "length",
            count(40, 310, unit="metres"),
            (
                "{s} measured {v} metres from bow to stern.",
                "{s} was {v} metres long.",
                "{p} overall length was {v} metres.",
            ),
            ("How long was {N}?", "What was the length of {N}?"),
        ),
        FactSpec(
            "crew",
            count(12, 1400),
            (
                "{s} carried a crew of {v}.",
                "{p} crew numbered {v}.",
                "A crew of {v} was needed to sail {n}.",
            ),
            ("How large was the crew of {N}?", "How many crew did {N} carry?"),
        ),
        FactSpec(
            "hull_colour",
            pick(COLOURS),
            (
                "{p} hull was painted {v}.",
                "{s} had {av} hull.",
            ),
            ("What colour was the hull of {N}?", "What colour was {Np} hull?"),
        ),
        FactSpec(
            "builder",
            reference("company", lambda names: names.place("the {} Shipyard"), probability=0.6),
            (
                "{s} was built by {v}.",
                "{v} built {n}.",
                "The builder of {n} was {v}.",
            ),
            ("Who built {N}?", "Which firm built {N}?"),
        ),
    ),
    fillers=(
        "{s} survived a severe storm on one of her early voyages.",
        "Models of {n} are sold in harbour shops.",
        "{p} logbooks are kept in a maritime archive.",
        "{s} was refitted more than once.",
        "{p} bell is now displayed in a harbour museum.",
        "A painting of {n} at anchor hangs in the town hall.",
        "{s} was briefly requisitioned during a long war.",
    ),
)
