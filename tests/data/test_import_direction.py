"""Imports run one way: the runtime never needs the tooling, and eval/ and data/ never import training/.

Read from the source with `ast` (every import, also one inside a function), plus one real import of the
query-time modules in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(folder: Path) -> dict[str, set[str]]:
    """file (relative to the repository) -> the modules it imports."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[path.relative_to(ROOT).as_posix()] = names
    return found


def _offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{file} imports {name}"
        for file, names in _imports(ROOT / folder).items()
        for name in sorted(names)
        if name.startswith(forbidden)
    ]


def test_the_runtime_package_never_imports_the_tooling():
    assert _offenders("ragcompress", ("ragcompress_tools",)) == []
    assert _offenders("indexing", ("ragcompress_tools",)) == []


def test_eval_and_data_never_import_training():
    assert _offenders("ragcompress/eval", ("ragcompress.training",)) == []
    assert _offenders("ragcompress/data", ("ragcompress.training", "ragcompress.eval")) == []


def test_query_time_imports_load_no_tooling():
    code = (
        "import sys, ragcompress, ragcompress.cli, ragcompress.eval.qa, ragcompress.data.qa_dataset\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('ragcompress_tools'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT / "tests")
