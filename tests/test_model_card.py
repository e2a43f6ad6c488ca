"""The model card's evaluation tables are what scripts/card_tables.py makes of the committed run records.

docs/default-model.md names its sources once, in its "Tables:" command; every table block that
card_tables.py writes (a `<!-- ppl: ... -->`, `<!-- qa: ... -->` or `<!-- qa by kind: ... -->` comment
followed by a markdown table) must equal the table rebuilt from those JSON files.
Every path into experiments/ that the docs cite must exist, so moving or dropping a record breaks no citation.
"""

import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "docs" / "default-model.md"
BLOCK = re.compile(r"<!-- (ppl|qa|qa by kind): ([^>;]*?)(?:; missing [^>]*)? -->\n((?:\|.*\|\n)+)")


def _card_tables():
    spec = importlib.util.spec_from_file_location("card_tables", ROOT / "scripts" / "card_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sources(card: str, tables) -> dict[str, tuple[Path, str]]:
    """label -> (eval folder, model) from the card's `Tables: python scripts/card_tables.py ...` command."""
    found = re.search(r"Tables: `python scripts/card_tables\.py ([^`]*)`", card)
    assert found, "docs/default-model.md lost its 'Tables:' command"
    args = shlex.split(found.group(1))
    models = args[args.index("--models") + 1 :]
    sources = tables.model_sources(models, Path(args[args.index("--eval") + 1]))
    return {label: (ROOT / folder, model) for label, (folder, model) in sources.items()}


def _check(card: str) -> None:
    tables = _card_tables()
    sources = _sources(card, tables)
    render = {"ppl": tables.ppl_table, "qa": tables.qa_table, "qa by kind": tables.qa_kind_table}
    blocks = BLOCK.findall(card)
    assert {name for name, _, _ in blocks} == set(render), "the card should show all three kinds of table"
    for name, labels, table in blocks:
        results = {}
        for label in [x.strip() for x in labels.split(",")]:
            folder, model = sources[label]
            kind = "ppl" if name == "ppl" else "qa"
            results[label] = json.loads((folder / f"{kind}-{model}.json").read_text())
        assert table.strip() == render[name](results), f"the card's {name} table ({labels}) is stale"


def test_card_tables_match_the_run_records():
    _check(CARD.read_text())


def test_a_stale_number_is_caught():
    card = CARD.read_text()
    first = BLOCK.search(card)
    row = first.group(3).splitlines()[2]  # the first data row
    number = re.search(r"\d+\.\d{3}", row).group(0)
    changed = row.replace(number, f"{float(number) + 0.001:.3f}", 1)
    with pytest.raises(AssertionError, match="is stale"):
        _check(card.replace(row, changed, 1))


def test_every_cited_record_exists():
    """Paths into experiments/ that the docs cite (card, README, docs/*.md, experiments' READMEs) exist."""
    docs = [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "experiments").glob("*/README.md")),
    ]
    cited = set()
    for doc in docs:
        cited |= {m.rstrip(".,:;") for m in re.findall(r"(?<![\w/])experiments/[\w./@-]+", doc.read_text())}
    assert len(cited) > 20, cited  # the card cites the records of every run
    missing = sorted(c for c in cited if not (ROOT / c).exists())
    assert not missing, f"cited but not in the repository: {missing}"
