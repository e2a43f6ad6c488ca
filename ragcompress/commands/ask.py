"""`ragcompress ask "question"`: answer from an index and show where the answer came from."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

MAX_PASSAGE_CHARS = 400  # --show-passages prints at most this much of each passage


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def ask(
    question: str = typer.Argument(..., help="the question"),
    index: Path | None = typer.Option(
        None, "--index", help="index directory (default: the one `ragcompress index` built last)"
    ),
    k: int = typer.Option(5, "--k", "-k", help="passages to retrieve"),
    mode: str = typer.Option("fused", help="fused | text | replug | none"),
    rerank: str | None = typer.Option(None, help="re-order the passages first: summary_l2 | upr"),
    rerank_candidates: int | None = typer.Option(
        None, help="re-rank this many retrieved passages and keep the best k"
    ),
    show_passages: bool = typer.Option(False, "--show-passages", help="print the passages used"),
    max_new_tokens: int = typer.Option(64, help="longest answer, in tokens"),
    stream: bool = typer.Option(True, help="print the answer as it is generated"),
    extractive: bool = typer.Option(
        False, "--extractive", help="answer with a span of the passages' text (fused and text modes)"
    ),
    model: str | None = typer.Option(None, help="compressor (default: the one the index was built with)"),
    embedder: str | None = typer.Option(None, help="embedder (default: the one the index was built with)"),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1, ... (default: cuda if available)"),
) -> None:
    """Answer QUESTION from an index's passages (fused summary vectors by default) and list the sources."""
    from ragcompress.defaults import MissingDefaultModelError
    from ragcompress.paths import last_index
    from ragcompress.retrieval import MODES, RERANKERS, Retriever
    from ragcompress.retrieval.extractive import SPAN_MODES
    from ragcompress.store import StoreError

    # checked before the models load, so a typo fails in a moment, not after seconds of loading
    if mode not in MODES:
        _fail(f"--mode {mode!r} is not one of {', '.join(MODES)}")
    if extractive and mode not in SPAN_MODES:
        _fail(f"--extractive works with --mode fused or text, not {mode!r}")
    if rerank is not None and rerank not in RERANKERS:
        _fail(f"--rerank {rerank!r} is not one of {', '.join(RERANKERS)}")
    if index is None:
        index = last_index()
        if index is None:
            _fail(
                "no index given and none built yet: run `ragcompress index CORPUS` first, or pass --index DIR"
            )
    try:
        retriever = Retriever(index, model=model, embedder=embedder, device=device)
    except (StoreError, MissingDefaultModelError, OSError, ValueError, TypeError) as error:
        _fail(_one_line(error))
    with retriever:
        options = dict(k=k, mode=mode, rerank=rerank, rerank_candidates=rerank_candidates)
        if extractive:
            options["extractive"] = True
        try:
            if stream:
                pieces = retriever.stream(question, max_new_tokens=max_new_tokens, **options)
                if pieces.note:
                    typer.echo(f"note: {pieces.note}", err=True)
                for piece in pieces:
                    typer.echo(piece, nl=False)
                    sys.stdout.flush()
                typer.echo("")
                result = pieces.answer
            else:
                result = retriever.answer(question, max_new_tokens=max_new_tokens, **options)
                if result.note:
                    typer.echo(f"note: {result.note}", err=True)
                typer.echo(result.text.strip())
        except (StoreError, ValueError) as error:
            _fail(_one_line(error))
    _print_sources(result, show_passages)


def _print_sources(result, show_passages: bool) -> None:
    if not result.passages:
        typer.echo("\nSources: none (answered without retrieval)")
        return
    typer.echo(f"\nSources (most relevant first): {', '.join(result.sources)}")
    if not show_passages:
        return
    order = "best first" if result.mode == "replug" else "least → most relevant, as fed to the model"
    typer.echo(f"\nPassages ({order}):")
    for number, passage in enumerate(result.passages, 1):
        score = f"score {passage.score:.3f}"
        if passage.rerank_score is not None:
            score += f", rerank {passage.rerank_score:.3f}"
        text = " ".join(passage.text.split())
        if len(text) > MAX_PASSAGE_CHARS:
            text = text[:MAX_PASSAGE_CHARS] + " …"
        typer.echo(
            f"[{number}] {passage.doc_id} (chars {passage.char_start}–{passage.char_end}, {score})\n    {text}"
        )


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
