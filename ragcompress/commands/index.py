"""`ragcompress index CORPUS`: the command line of the ``index`` verb, which lives in the top-level
``indexing`` package (``indexing.pipeline.index_corpus``); this file parses options and maps errors
to one line and an exit status."""

from __future__ import annotations

from pathlib import Path

import typer

from ragcompress.commands import quiet_model_loading

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
        from indexing.report import print_report, unreadable_message
        from ragcompress.paths import remember_last_index
        from ragcompress.store import StoreError

        try:
            with quiet_model_loading():  # transformers' bars per weight load; ours say what is happening
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
                    commit_every=DEFAULT_COMMIT_EVERY if commit_every is None else commit_every,
                    progress=progress,
                    workers=workers,
                    follow_links=follow_links,
                )
        except (IndexingError, StoreError) as error:
            _fail(str(error))
        except OSError as error:  # a read-only folder, a full disk: every commit made so far is kept
            where = f": {error.filename}" if error.filename else ""
            _fail(
                f"cannot write the index ({error.strerror or error}{where}); fix that and run the same command again"
            )
        except KeyboardInterrupt:
            kept = (
                "the old index is unchanged until the rebuild ends"
                if rebuild
                else "everything committed so far is kept"
            )
            _fail(f"interrupted; {kept}: run the same command again to finish", 130)
        remember_last_index(report.index_dir)
        print_report(report)
        unreadable = unreadable_message(report)
        if unreadable:
            # Not a clean run: scripts and cron jobs must notice, as rsync's "partial transfer" does.
            _fail(unreadable, UNREADABLE_EXIT)
