"""`ragcompress {index, info, ask, serve, train, eval}`: one typer app; each verb lives in ragcompress/commands/
(`serve` in ragcompress/serve/, beside the server it starts)."""

from __future__ import annotations

import importlib

import typer

from ragcompress import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Retrieval-augmented generation over a corpus pre-compressed into AutoCompressor summary vectors.",
    epilog=(
        "Environment: RAGCOMPRESS_DTYPE (auto | float32 | bfloat16 | float16; auto: bf16 on GPUs and on CPUs "
        "with bf16 instructions, fp32 on other CPUs), RAGCOMPRESS_HOME (indexes built without --index, and which one was last; "
        "~/.local/share/ragcompress), RAGCOMPRESS_CACHE (the converted default model; ~/.cache/ragcompress), "
        "RAGCOMPRESS_SMOLLM2_GGUF (a GGUF to use instead of the installed package's)."
    ),
)

# Each module defines `register(app)`; the list is explicit so `ragcompress --help` shows what exists.
COMMAND_MODULES = (
    "ragcompress.commands.index",
    "ragcompress.commands.info",
    "ragcompress.commands.ask",
    "ragcompress.serve.command",
    "ragcompress.commands.train",
    "ragcompress.commands.evaluate",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ragcompress {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Retrieval-augmented generation over a corpus pre-compressed into AutoCompressor summary vectors."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
