"""`ragcompress eval rlm`: retrieval-augmented language modelling through the product (eval/rlm.py)."""

from __future__ import annotations

from pathlib import Path

import typer


def rlm_command(
    corpus: Path = typer.Argument(..., help="folder of documents to index (the retrieval datastore)"),
    texts: Path = typer.Argument(..., help="held-out .txt/.md/.rst file or folder, not in CORPUS"),
    index: Path = typer.Option(..., "--index", help="index dir to build or bring up to date"),
    k: str = typer.Option("1,3,5,10", "--k", help="passages retrieved; several as 1,3,5,10"),
    modes: str = typer.Option(
        "none,replug,fused,fused-rerank", help="comma-separated: none, text, replug, fused, fused-rerank"
    ),
    model: str = typer.Option("default", "--model", help="compressor: default | adapter dir | model dir"),
    embedder: str = typer.Option("default", "--embedder", help="sentence-transformers model name or path"),
    chunk_tokens: int = typer.Option(512, "--chunk-tokens", help="tokens per indexed chunk"),
    overlap: int = typer.Option(64, "--overlap", help="tokens each chunk repeats from the previous one"),
    vector_dtype: str = typer.Option("fp16", "--vector-dtype", help="fp16 | bf16 | int8 | fp8"),
    context_tokens: int = typer.Option(128, help="tokens of each window read as context and query"),
    target_tokens: int = typer.Option(128, help="tokens of each window scored"),
    per_doc: int = typer.Option(1, help="windows taken from each held-out document"),
    limit: int | None = typer.Option(None, help="at most N windows"),
    smoothing: float = typer.Option(
        0.5,
        help="mix each retrieval mode's token probabilities with no retrieval's (the paper: 0.5; 0 = off)",
    ),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1 … (default: a GPU if present)"),
    out: Path | None = typer.Option(None, help="X.json (also X.md, X.png) or a folder (rlm.json, …)"),
) -> None:
    """Perplexity of held-out text continued after a short context, with the passages the context
    retrieves from an index of other documents: none / text / REPLUG / fused summary vectors (± re-ranking),
    for several k (the AutoCompressors paper's Table 5; docs/retrieval.md, "Evaluating language modelling").

    Example: ragcompress eval rlm corpus/ heldout/ --index rlm-index --k 1,5,10 --out rlm/
    """
    from ragcompress.eval.rlm import RLMEvalError, parse_modes, run_rlm, save_report

    def fail(message: str) -> None:
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)

    try:
        chosen = parse_modes(modes)
        ks = sorted({int(x) for x in k.split(",") if x.strip()})
        if not ks or ks[0] < 1:
            raise ValueError
    except RLMEvalError as exc:
        fail(str(exc))
    except ValueError:
        fail(f"--k {k!r}: give positive whole numbers, e.g. 1,3,5,10")
    if not 0.0 <= smoothing < 1.0:
        fail(f"--smoothing {smoothing}: must lie in [0, 1)")
    try:
        result = run_rlm(
            corpus,
            texts,
            index,
            ks,
            chosen,
            model=model,
            embedder=embedder,
            chunk_tokens=chunk_tokens,
            overlap=overlap,
            vector_dtype=vector_dtype,
            context_tokens=context_tokens,
            target_tokens=target_tokens,
            per_doc=per_doc,
            limit=limit,
            smoothing=smoothing or None,
            device=device,
            log=lambda line: typer.echo(line, err=True),
        )
    except RLMEvalError as exc:
        fail(str(exc))
    typer.echo(result.markdown())
    if out is not None:
        try:
            written = save_report(result, out)
        except (RuntimeError, OSError) as exc:
            fail(f"--out {out}: {exc}")
        typer.echo("saved " + ", ".join(str(p) for p in written))


def register(eval_app: typer.Typer) -> None:
    eval_app.command("rlm")(rlm_command)
