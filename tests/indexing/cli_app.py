"""A typer app with only the index and info commands, so these tests do not depend on the other verbs.

Run as a script it is the `ragcompress` CLI for subprocess tests: python tests/indexing/cli_app.py index …
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ragcompress.commands import index, info  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True)
index.register(app)
info.register(app)

if __name__ == "__main__":
    app()
