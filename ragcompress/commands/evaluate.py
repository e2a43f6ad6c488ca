"""`ragcompress eval {ppl, compare, qa}`: the paper's Table 1 perplexity protocol, a paired comparison of two
such results, and retrieval-QA EM/F1."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ragcompress.commands import quiet_model_loading

eval_app = typer.Typer(
    no_args_is_help=True, help="Evaluate a compressor: perplexity with compressed context, QA."
)


@eval_app.callback()
def _quiet_loading(ctx: typer.Context) -> None:
    """No transformers progress bars while a subcommand loads its models; restored when it ends."""
    ctx.with_resource(quiet_model_loading())


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@eval_app.command("ppl")
def ppl_command(
    data: list[Path] = typer.Argument(
        ..., help="text sets: dirs of .txt/.md/.jsonl, .jsonl files, HF datasets"
    ),
    model: str = typer.Option("default", help="default | base | adapter dir | model dir"),
    segment_length: int = typer.Option(512, help="tokens per segment (S)"),
    context_segments: int = typer.Option(3, help="n: evaluate 1..n compressed context segments"),
    max_windows: int = typer.Option(64, help="windows of (n+1)·S tokens, each inside one document"),
    per_source: int | None = typer.Option(None, help="at most this many windows per data path"),
    batch_size: int = typer.Option(4),
    device: str | None = typer.Option(None),
    out: Path | None = typer.Option(None, help="write the result as JSON"),
) -> None:
    """Final-segment PPL with no context, compressed context (1..n steps) and plain-text context."""
    from ragcompress.compressor import Compressor
    from ragcompress.data.documents import DataError
    from ragcompress.defaults import dtype_name
    from ragcompress.eval.ppl import evaluate_ppl, labelled_windows

    try:
        compressor = Compressor.load(model, device=device)
        windows, sources = labelled_windows(
            [str(p) for p in data],
            compressor.tokenizer,
            segment_length * (context_segments + 1),
            max_windows,
            per_path=per_source,
        )
    except (ValueError, DataError, OSError) as exc:
        _fail(str(exc))
    result = evaluate_ppl(
        compressor.model, windows, segment_length, context_segments, batch_size=batch_size, sources=sources
    )
    identity = compressor.info
    result.meta = {
        "model": identity.id,
        "weights_hash": identity.weights_hash,
        "model_dtype": dtype_name(compressor.dtype),
        "data": [str(p) for p in data],
    }
    typer.echo(result.table())
    if out:
        result.save(out)
        typer.echo(f"saved {out}")


def _is_qa_result(path: Path) -> bool:
    """Whether ``path`` holds a saved QA result (it records recall@k); anything else goes to the PPL loader."""
    try:
        return "recall_at_k" in json.loads(path.read_text())
    except (OSError, ValueError, TypeError):
        return False


def _ppl_lines(result: dict, context_segments: int, samples: int) -> list[str]:
    s_low, s_high = result["nats_saved_diff_ci95"]
    lines = [f"{result['windows']} shared windows, {context_segments} compressed segment(s)"]
    if result["gain_kept_diff_ci95"] is None:
        lines.append("gain kept: n/a (the plain-text context does not lower the PPL of one of them)")
    else:
        lines.append(
            f"gain kept: {_gain_kept_diff(result)}; "
            f"B ahead in {100 * result['share_b_better']:.1f} % of {samples} resamples)"
        )
    lines.append(
        f"nats per token saved by compression, B - A: {result['nats_saved_diff']:+.4f} "
        f"(95 % CI {s_low:+.4f} .. {s_high:+.4f}); B saves more on "
        f"{result['windows_b_saves_more']} of {result['windows']} windows"
    )
    for source, part in result.get("by_source", {}).items():
        if part["gain_kept_diff_ci95"] is None:
            kept = f"A {100 * part['gain_kept_a']:.1f} %, B {100 * part['gain_kept_b']:.1f} %"
        else:
            kept = _gain_kept_diff(part) + ")"
        lines.append(f"  {source} ({part['windows']} windows): gain kept {kept}")
    return lines


def _gain_kept_diff(result: dict) -> str:
    """``A 41.2 %, B 38.1 %; B - A -3.1 points (95 % CI -4.9 .. -1.5`` (the caller closes the bracket)."""
    low, high = result["gain_kept_diff_ci95"]
    return (
        f"A {100 * result['gain_kept_a']:.1f} %, B {100 * result['gain_kept_b']:.1f} %; "
        f"B - A {100 * result['gain_kept_diff']:+.1f} points (95 % CI {100 * low:+.1f} .. {100 * high:+.1f}"
    )


def _qa_lines(result: dict) -> list[str]:
    runs = f"A: {result['run_a']}; B: {result['run_b']}"
    if result["run_a"] != result["run_b"]:
        runs += " (not the same settings: a sweep's file stands for its first vector dtype at its largest k;"
        runs += " compare its per-run files for another)"
    return [
        runs,
        f"{result['questions']} shared questions, {result['mode']} mode: "
        f"EM A {result['em_a']:.3f}, B {result['em_b']:.3f}",
        f"right for both {result['both']}, only A {result['only_a']}, only B {result['only_b']}, "
        f"neither {result['neither']}; exact sign test over the {result['only_a'] + result['only_b']} "
        f"that differ: p = {result['p_value']:.2g}",
    ]


@eval_app.command("compare")
def compare_command(
    a: Path = typer.Argument(
        ..., help="model A's result JSON (`ragcompress eval ppl --out` or `eval qa --out`)"
    ),
    b: Path = typer.Argument(..., help="model B's result JSON of the same kind, on the same data"),
    context_segments: int = typer.Option(
        1, help="PPL: compare the gain kept with this many compressed segments"
    ),
    samples: int = typer.Option(10000, help="PPL: bootstrap samples"),
    seed: int = typer.Option(0, help="PPL: bootstrap seed"),
    mode: str = typer.Option("fused", help="QA: the mode whose answers are compared"),
    out: Path | None = typer.Option(None, help="write the comparison as JSON"),
    plot: Path | None = typer.Option(
        None, "--plot", help="QA: write a PNG comparing the two runs question by question"
    ),
) -> None:
    """Is B better than A, beyond chance? Paired over the same windows (PPL) or questions (QA).

    PPL results: a bootstrap over windows of the gain-kept and nats-saved differences. QA results:
    per-question exact matches of one mode, with an exact sign test.
    """
    from ragcompress.eval.ppl import PPLResult, compare
    from ragcompress.eval.qa import QAResult, compare_qa

    qa = [_is_qa_result(a), _is_qa_result(b)]
    try:
        if qa[0] != qa[1]:
            raise ValueError(
                f"{a if qa[0] else b} is a QA result and the other is not; compare like with like"
            )
        if plot is not None and not qa[0]:
            raise ValueError("--plot draws QA comparisons only; drop it for perplexity results")
        if qa[0]:
            runs = QAResult.load(a), QAResult.load(b)
            result = compare_qa(*runs, mode, names=(str(a), str(b)))
            lines = _qa_lines(result)
            if plot is not None:
                from ragcompress.eval.qa_report import plot_comparison

                lines.append(f"saved {plot_comparison(*runs, mode, (str(a), str(b)), result, plot)}")
        else:
            result = compare(
                PPLResult.load(a),
                PPLResult.load(b),
                context_segments,
                samples=samples,
                seed=seed,
                names=(str(a), str(b)),
            )
            lines = _ppl_lines(result, context_segments, samples)
    except (ValueError, RuntimeError) as exc:  # RuntimeError: matplotlib is missing
        _fail(str(exc))
    typer.echo("\n".join(lines))
    if out:
        out.write_text(json.dumps(result, indent=2) + "\n")
        typer.echo(f"saved {out}")


@eval_app.command("qa")
def qa_command(
    data: Path = typer.Argument(
        ..., help="a dataset dir (corpus/ + questions.jsonl), or a corpus folder when QUESTIONS follows"
    ),
    questions: Path | None = typer.Argument(
        None, help="questions.jsonl: id, question, answers, doc_ids (+ optional kind) per line"
    ),
    index: Path | None = typer.Option(
        None,
        "--index",
        help="index dir to build or update (default: a cache folder per corpus and settings); "
        "with several --vector-dtype, one sub-folder per dtype",
    ),
    k: str = typer.Option("5", "--k", help="chunks retrieved per question; several as 1,3,5"),
    modes: str = typer.Option(
        "none,text,fused",
        help="comma-separated: none, text, fused, hybrid, replug, text-extractive, fused-extractive, "
        "hybrid-extractive",
    ),
    extractive: bool = typer.Option(
        False, "--extractive", help="answer text, fused and hybrid modes with spans of the retrieved passages"
    ),
    model: str = typer.Option(
        "default", "--model", help="compressor: default | base | adapter dir | model dir"
    ),
    embedder: str = typer.Option("default", "--embedder", help="sentence-transformers model name or path"),
    chunk_tokens: int = typer.Option(512, "--chunk-tokens", help="tokens per chunk (compressor tokenizer)"),
    overlap: int = typer.Option(64, "--overlap", help="tokens each chunk repeats from the previous one"),
    vector_dtype: str = typer.Option(
        "fp16", "--vector-dtype", help="fp16 | bf16 | int8 | fp8; several as fp16,int8 (one index each)"
    ),
    faiss: str = typer.Option("flat", "--faiss", help="flat | ivf | hnsw"),
    rebuild: bool = typer.Option(False, "--rebuild", help="start a named --index over"),
    limit: int | None = typer.Option(None, help="first N questions only"),
    batch_size: int = typer.Option(8, help="questions generated at once"),
    max_new_tokens: int = typer.Option(24, help="answer length limit (tokens)"),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1 … (default: a GPU if present)"),
    out: Path | None = typer.Option(None, help="X.json (also X.md, X-*.png) or a folder (qa.json, qa.md, …)"),
) -> None:
    """EM, F1, answer containment and recall@k through the product: index the corpus, then answer
    every question with Retriever.answer_batch (docs/retrieval.md, "Evaluating QA").

    Example: ragcompress eval qa corpus/ questions.jsonl --k 1,3,5 --vector-dtype fp16,int8 --out qa/
    """
    from ragcompress.eval.index_qa import QAEvalError, parse_ks, parse_modes

    try:
        chosen = parse_modes(modes, extractive)
        ks = parse_ks(k)
        dtypes = [d.strip() for d in vector_dtype.split(",") if d.strip()]
    except QAEvalError as exc:
        _fail(str(exc))
    from ragcompress.eval.index_qa import IndexSettings, load_qa_set, run_sweep
    from ragcompress.store.manifest import VECTOR_DTYPES

    wrong = [d for d in dtypes if d not in VECTOR_DTYPES] or ([] if dtypes else [vector_dtype])
    if wrong:
        _fail(f"--vector-dtype: {wrong[0]!r} is not one of {', '.join(VECTOR_DTYPES)}")
    settings = IndexSettings(model, embedder, chunk_tokens, overlap, faiss)
    try:
        qa = load_qa_set(data, questions, limit)
        results = run_sweep(
            qa,
            settings,
            dtypes,
            ks,
            chosen,
            index=index,
            device=device,
            rebuild=rebuild,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            log=lambda line: typer.echo(line, err=True),
        )
    except QAEvalError as exc:
        _fail(str(exc))
    _write_qa(results, out)


def _write_qa(results, out: Path | None) -> None:
    from ragcompress.eval.qa_report import markdown, save_report

    typer.echo(markdown(results))
    if out is None:
        return
    try:
        written = save_report(results, out)
    except (RuntimeError, OSError) as exc:  # RuntimeError: matplotlib is missing
        _fail(f"--out {out}: {exc}")
    typer.echo("saved " + ", ".join(str(path) for path in written))


def register(app: typer.Typer) -> None:
    from ragcompress.commands import evaluate_rlm

    evaluate_rlm.register(eval_app)
    app.add_typer(eval_app, name="eval")
