"""`ragcompress index CORPUS`: build or update the summary-vector index of a folder of documents."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import typer

MAX_SKIPPED_SHOWN = 10
UNREADABLE_EXIT = 1  # the index was updated, but some files or folders could not be read


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    @app.command("index")
    def index_command(
        corpus: Path = typer.Argument(
            ..., help="a folder of documents (.txt .md .rst .html .jsonl .pdf) or one file"
        ),
        index: Path | None = typer.Option(
            None, "--index", help="index directory (default: one per corpus under ~/.local/share/ragcompress)"
        ),
        model: str = typer.Option(
            "default", "--model", help="compressor: default | base | adapter dir | model dir"
        ),
        embedder: str = typer.Option(
            "default", "--embedder", help="sentence-transformers model name or path"
        ),
        chunk_tokens: int = typer.Option(
            512, "--chunk-tokens", help="tokens per chunk (compressor tokenizer)"
        ),
        overlap: int = typer.Option(64, "--overlap", help="tokens each chunk repeats from the previous one"),
        vector_dtype: str = typer.Option("fp16", "--vector-dtype", help="fp16 | bf16 | int8 | fp8"),
        faiss: str = typer.Option("flat", "--faiss", help="flat | ivf | hnsw"),
        engine: str = typer.Option("local", "--engine", help="local | ray"),
        workers: int | None = typer.Option(
            None, "--workers", help="ray actors (default: one per GPU, else 1)"
        ),
        device: str | None = typer.Option(
            None, "--device", help="cpu, cuda, cuda:1 … (default: a GPU if present)"
        ),
        rebuild: bool = typer.Option(
            False, "--rebuild", help="start the index over (old one kept until done)"
        ),
        batch_size: int | None = typer.Option(
            None, "--batch-size", help="chunks per batch (default 32 GPU, 8 CPU)"
        ),
        commit_every: int | None = typer.Option(
            None, "--commit-every", help="commit at most this many documents at once"
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bars on stderr"),
        follow_links: bool = typer.Option(
            False, "--follow-links", help="also read symlinks leading out of the corpus (default: skip)"
        ),
    ) -> None:
        """Index a corpus: chunk, embed and compress new or changed documents; remove deleted ones.

        Re-running on the same folder only redoes what changed; a killed run keeps what it committed.
        Example: ragcompress index docs/ --vector-dtype int8
        """
        from indexing.pipeline import DEFAULT_COMMIT_EVERY, IndexingError, index_corpus
        from ragcompress.paths import remember_last_index
        from ragcompress.store import StoreError

        _quiet_model_loading()
        try:
            report = index_corpus(
                corpus,
                index,
                model=model,
                embedder=embedder,
                chunk_tokens=chunk_tokens,
                overlap=overlap,
                vector_dtype=vector_dtype,
                faiss_kind=faiss,
                engine=engine,
                device=device,
                rebuild=rebuild,
                batch_size=batch_size,
                commit_every=commit_every or DEFAULT_COMMIT_EVERY,
                progress=progress,
                workers=workers,
                follow_links=follow_links,
            )
        except (IndexingError, StoreError) as error:
            _fail(str(error))
        except KeyboardInterrupt:
            _fail(
                "interrupted; everything committed so far is kept: run the same command again to finish", 130
            )
        remember_last_index(report.index_dir)
        _print_summary(report)
        if report.unreadable:
            # Not a clean run: scripts and cron jobs must notice, as rsync's "partial transfer" does.
            kept = ""
            if report.kept_unreadable:
                kept = f"; {report.kept_unreadable} document(s) from them kept as indexed before"
            _fail(
                f"{len(report.unreadable)} file(s) or folder(s) could not be read{kept}: "
                "fix their permissions (or the disk) and run the same command again",
                UNREADABLE_EXIT,
            )


def _quiet_model_loading() -> None:
    # transformers draws a progress bar per weight load; ours already say what is happening.
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def _print_summary(report) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    stats = report.stats
    table = Table(title=Text(f"index {report.index_dir}"), show_header=True, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("this run", justify="right")
    table.add_column("index total", justify="right")
    docs_total = f"{stats.documents:,}"
    table.add_row("documents added", f"{report.added:,}", docs_total)
    table.add_row("documents changed", f"{report.changed:,}", "")
    table.add_row("documents removed", f"{report.removed:,}", "")
    table.add_row("documents unchanged", f"{report.unchanged:,}", "")
    if report.kept_unreadable:
        table.add_row("documents kept (unreadable)", f"{report.kept_unreadable:,}", "")
    table.add_row("files skipped", f"{len(report.skipped):,}", "")
    table.add_row("chunks", f"{report.chunks:,}", f"{stats.chunks:,}")
    table.add_row("text tokens", f"{report.tokens:,}", f"{stats.tokens:,}")
    table.add_row("bytes per text token", "", f"{stats.bytes_per_token:.1f} ({stats.vector_dtype} vectors)")
    table.add_row("disk bytes per text token", "", f"{stats.disk_bytes_per_token:.1f}")
    table.add_row("time", f"{report.seconds:.1f} s", "")
    table.add_row("chunks/s", f"{report.chunks_per_second:.2f}", "")
    console.print(table)
    if report.skipped:
        by_reason: dict[tuple[bool, str], list[str]] = defaultdict(list)
        for skipped in report.skipped:
            by_reason[(skipped.unreadable, skipped.reason)].append(str(skipped))
        # Plain lines, never wrapped, so paths can be copied and grepped.
        typer.echo(f"skipped {len(report.skipped)} file(s) or record(s):")
        shown = 0
        # Files that could not be read first (the run is incomplete for them), then the commonest reasons.
        for _, entries in sorted(by_reason.items(), key=lambda item: (not item[0][0], -len(item[1]))):
            for entry in entries[: max(0, MAX_SKIPPED_SHOWN - shown)]:
                typer.echo(f"  {entry}")
                shown += 1
        if len(report.skipped) > shown:
            typer.echo(f"  … and {len(report.skipped) - shown} more")
    typer.echo(f"index written to {report.index_dir.resolve()}")
