"""Every notebook in notebooks/ runs top to bottom on CPU (its cells assert what they show), and the
files as committed carry their outputs, plots included, and use only the public API."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# Imports a notebook may make from the package: the top-level names only (`from ragcompress import X`).
PRIVATE_IMPORT = re.compile(r"^\s*(from|import)\s+(ragcompress\.\w+|indexing\b)", re.MULTILINE)
# 01 predates the rule and still imports helpers from submodules (indexing.pipeline, eval, prompting).
PRIVATE_IMPORTS_KNOWN = {"01-quickstart"}


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.e2e
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any failure


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_executed(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells[0].cell_type == "markdown", "a notebook opens with what it shows"
    counts = [cell.execution_count for cell in code_cells(notebook)]
    assert None not in counts, f"{path.name}: stored without outputs; run scripts/make_notebooks.py --execute"
    assert counts == sorted(counts), f"{path.name}: cells were run out of order"
    errors = [o for cell in code_cells(notebook) for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: stored with an error output"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem not in PRIVATE_IMPORTS_KNOWN], ids=str)
def test_notebook_uses_public_api_and_plots(path):
    notebook = nbformat.read(path, as_version=4)
    source = "\n".join(cell.source for cell in code_cells(notebook))
    assert not PRIVATE_IMPORT.findall(source), f"{path.name} imports a private module"
    pngs = [o for cell in code_cells(notebook) for o in cell.outputs if "image/png" in o.get("data", {})]
    assert pngs, f"{path.name} stores no plot"
    assert "minute" in notebook.cells[0].source, "the opening says how long it takes"


def test_there_is_a_notebook():
    assert len(NOTEBOOKS) >= 4


def test_generated_notebooks_match_their_script():
    """notebooks/02-… are written by scripts/make_notebooks.py: the stored cells are the script's cells."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "make_notebooks.py"
    spec = importlib.util.spec_from_file_location("make_notebooks", script)
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    for name, cells in make.NOTEBOOKS.items():
        stored = nbformat.read(script.parents[1] / "notebooks" / name, as_version=4)
        built = make.build(cells)
        assert [(c.cell_type, c.source) for c in stored.cells] == [
            (c.cell_type, c.source) for c in built.cells
        ], name
