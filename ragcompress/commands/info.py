"""`ragcompress info [DIR]`: what an index holds, in a table or as JSON; `--check` verifies it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def describe(path: Path) -> dict[str, Any]:
    """Everything `info` reports about the store at ``path``, as plain JSON-ready values."""
    from ragcompress.store import Store

    with Store.open(path) as store:
        stats = store.stats()
        manifest = store.manifest
        return {
            "index": str(path),
            "documents": stats.documents,
            "chunks": stats.chunks,
            "tokens": stats.tokens,
            "vectors": stats.vectors,
            "bytes_per_token": stats.bytes_per_token,
            "disk_bytes": stats.disk_bytes,
            "disk_bytes_per_token": stats.disk_bytes_per_token,
            "vector_dtype": manifest.vector_dtype,
            "scale_dtype": manifest.scale_dtype,
            "compressor": asdict(manifest.compressor),
            "embedder": asdict(manifest.embedder),
            "chunking": asdict(manifest.chunking),
            "faiss": asdict(manifest.faiss),
            "generation": stats.generation,
            "created_at": manifest.created_at,
        }


def register(app: typer.Typer) -> None:
    @app.command("info")
    def info_command(
        index: Path | None = typer.Argument(None, help="index directory (default: the last one indexed)"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        check: bool = typer.Option(
            False, "--check", help="verify manifest, checksums and counts; exit 1 on problems"
        ),
    ) -> None:
        """Describe an index: documents, chunks, tokens, bytes per text token, models, dtype."""
        from ragcompress.paths import last_index
        from ragcompress.store import Store, StoreError

        if index is None:
            index = last_index()
            if index is None:
                _fail("no index given and none indexed yet; pass the index directory")
        if not index.exists():
            _fail(f"{index} does not exist")
        problems = Store.check_path(index) if check else []
        try:
            info = describe(index)
        except StoreError as error:
            if not check:
                _fail(str(error))
            info = {"index": str(index)}
            if str(error) not in problems:
                problems.append(str(error))
        if as_json:
            if check:
                info.update(ok=not problems, problems=problems)
            typer.echo(json.dumps(info, sort_keys=True))
        else:
            if "documents" in info:
                _print_table(info)
            if check:
                for problem in problems:
                    typer.echo(f"problem: {problem}")
                typer.echo(f"check: {len(problems)} problem(s)" if problems else "check: OK")
        if problems:
            raise typer.Exit(1)


def _print_table(info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    compressor, embedder, chunking = info["compressor"], info["embedder"], info["chunking"]
    console = Console()
    if not console.is_terminal:  # piped: as wide as the rows need, so no line breaks inside a path
        console = Console(width=100_000)
    console.print(Text(f"index {info['index']}"), soft_wrap=True)
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("documents", f"{info['documents']:,}"),
        ("chunks", f"{info['chunks']:,}"),
        ("text tokens", f"{info['tokens']:,}"),
        ("summary vectors", f"{info['vectors']:,}"),
        (
            "bytes per text token",
            f"{info['bytes_per_token']:.1f} (vectors), {info['disk_bytes_per_token']:.1f} (disk)",
        ),
        ("vector dtype", f"{info['vector_dtype']} (scales {info['scale_dtype']})"),
        (
            "compressor",
            f"{compressor['id']} (weights {compressor['weights_hash']}, κ={compressor['summary_length']}, "
            f"hidden {compressor['hidden_size']})",
        ),
        ("embedder", f"{embedder['id']} (dim {embedder['dim']})"),
        (
            "chunking",
            f"{chunking['chunk_tokens']} tokens, overlap {chunking['overlap']}, tokenizer {chunking['tokenizer']}",
        ),
        ("faiss", f"{info['faiss']['kind']} ({info['faiss']['metric']})"),
        ("generation", str(info["generation"])),
        ("created", info["created_at"]),
    ]
    for name, value in rows:
        table.add_row(name, Text(value))  # Text: paths and ids are not rich markup
    console.print(table)
