"""Write notebooks/02-*.ipynb … 04-*.ipynb from their cell texts, and optionally execute them.

    python scripts/make_notebooks.py            # write the notebooks (no outputs)
    python scripts/make_notebooks.py --execute  # write, run top to bottom with nbclient, store outputs
    python scripts/make_notebooks.py --execute --only 03

The notebooks are data, kept as plain strings in scripts/notebook_cells/ (one module per notebook) so
that a change reads as a diff. Only the public API is used in them: ``ragcompress`` top-level names,
``Retriever`` and the ``ragcompress`` command line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))  # notebook_cells, when run as a script
from notebook_cells.nb02 import NB02  # noqa: E402
from notebook_cells.nb03 import NB03  # noqa: E402
from notebook_cells.nb04 import NB04  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"

NOTEBOOKS = {
    "02-what-summary-vectors-keep.ipynb": NB02,
    "03-fused-text-replug.ipynb": NB03,
    "04-compress-your-corpus.ipynb": NB04,
}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    for kind, text in cells:
        text = text.strip("\n")
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        notebook.cells.append(make(text))
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run each notebook and store its outputs")
    parser.add_argument("--only", default="", help="prefix of the notebooks to write (e.g. 03)")
    args = parser.parse_args()
    for name, cells in NOTEBOOKS.items():
        if not name.startswith(args.only):
            continue
        path = NOTEBOOK_DIR / name
        notebook = build(cells)
        if args.execute:
            started = time.perf_counter()

            def progress(cell, cell_index, name=name, started=started, **_):
                print(f"{name}: cell {cell_index} done at {time.perf_counter() - started:.0f} s", flush=True)

            client = NotebookClient(
                notebook,
                timeout=1800,
                kernel_name="python3",
                resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
                on_cell_executed=progress,
            )
            try:
                client.execute()
            except Exception:
                failed = Path(tempfile.gettempdir()) / f"failed-{name}"
                nbformat.write(notebook, failed)  # for reading the outputs so far; notebooks/ is left alone
                print(f"{name} failed; the partial run is in {failed}", file=sys.stderr)
                raise
            print(f"{name}: executed in {time.perf_counter() - started:.0f} s")
        nbformat.write(notebook, path)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
