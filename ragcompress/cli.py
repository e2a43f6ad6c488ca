"""`ragcompress {index, info, ask, train, eval}`: one typer app; each verb lives in ragcompress/commands/."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Retrieval-augmented generation over a corpus pre-compressed into AutoCompressor summary vectors.",
)

# Each module defines `register(app)`; the list is explicit so `ragcompress --help` shows what exists.
COMMAND_MODULES = ("index", "info", "ask", "train", "evaluate")

for _name in COMMAND_MODULES:
    importlib.import_module(f"ragcompress.commands.{_name}").register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
