"""`ragcompress ask ["question"]`: answer from an index and show where the answer came from.

Without a question (or with ``--interactive``) it loads the models once and answers one question per
line: typed at a prompt, or piped in (``printf 'q1\\nq2\\n' | ragcompress ask --quiet``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from ragcompress.commands import quiet_model_loading

MAX_PASSAGE_CHARS = 400  # --show-passages prints at most this much of each passage
QUIT_WORDS = ("exit", "quit", ":q")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def one_line(error: BaseException) -> str:
    """An error's message, first line only (its type's name when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def open_retriever(
    index: Path | None,
    model: str | None,
    embedder: str | None,
    device: str | None,
    compile_decode: bool | str = False,
    gpu_vectors: bool = True,
):
    """A Retriever over ``index`` (default: the last one built), loaded quietly; one error line on failure.
    ``gpu_vectors``: the Retriever's (False for one question: it would load whole shards to read k chunks)."""
    from ragcompress.compressor import ModelLoadError
    from ragcompress.paths import last_index
    from ragcompress.retrieval import Retriever
    from ragcompress.store import StoreError

    if index is None:
        index = last_index()
        if index is None:
            _fail(
                "no index given and none built yet: run `ragcompress index CORPUS` first, or pass --index DIR"
            )
    try:
        with quiet_model_loading():
            return Retriever(
                index,
                model=model,
                embedder=embedder,
                device=device,
                compile_decode=compile_decode,
                gpu_vectors=gpu_vectors,
            )
    except (StoreError, ModelLoadError, OSError, ValueError, TypeError) as error:
        _fail(one_line(error))


COMPILE_DECODE_HELP = (
    "on a GPU, the fast decode step through torch.compile: off | static (one compilation per batch and "
    "cache size) | dynamic (the whole step, two per process) | regional (one decoder layer, compiled once "
    "for all)"
)


def compile_setting(value: str, *also: str):
    """``--compile-decode``'s value as the Retriever's ``compile_decode``; one error line if unknown
    (``also``: values the command takes besides, returned as they are)."""
    from ragcompress.modeling.step_compile import COMPILE_SETTINGS

    if value in also:
        return value
    if value not in COMPILE_SETTINGS:
        _fail(f"--compile-decode {value!r} is unknown; use one of {', '.join((*also, *COMPILE_SETTINGS))}")
    return COMPILE_SETTINGS[value]


def ask(
    question: str | None = typer.Argument(
        None, help="the question (none: read questions one per line, as with --interactive)"
    ),
    index: Path | None = typer.Option(
        None, "--index", help="index directory (default: the one `ragcompress index` built last)"
    ),
    k: int = typer.Option(5, "--k", "-k", help="passages to retrieve"),
    mode: str = typer.Option("fused", help="fused | text | replug | none | hybrid"),
    rerank: str | None = typer.Option(None, help="re-order the passages first: summary_l2 | upr"),
    rerank_candidates: int | None = typer.Option(
        None, help="re-rank this many retrieved passages and keep the best k"
    ),
    show_passages: bool = typer.Option(False, "--show-passages", help="print the passages used"),
    max_new_tokens: int = typer.Option(64, help="longest answer, in tokens"),
    stream: bool = typer.Option(True, help="print the answer as it is generated"),
    extractive: bool = typer.Option(
        False, "--extractive", help="answer with a span of the passages' text (fused, text, hybrid modes)"
    ),
    interactive: bool = typer.Option(
        False, "--interactive", "-i", help="keep the models loaded and answer questions until end of input"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only the answer"),
    as_json: bool = typer.Option(
        False, "--json", help="print the whole Answer as one JSON object per question"
    ),
    model: str | None = typer.Option(None, help="compressor (default: the one the index was built with)"),
    embedder: str | None = typer.Option(None, help="embedder (default: the one the index was built with)"),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1, ... (default: cuda if available)"),
    compile_decode: str = typer.Option("off", help=COMPILE_DECODE_HELP + "; the first answer pays"),
) -> None:
    """Answer QUESTION from an index's passages (fused summary vectors by default) and list the sources."""
    from ragcompress.retrieval import MODES, RERANKERS
    from ragcompress.retrieval.extractive import SPAN_MODES

    # checked before the models load, so a typo fails in a moment, not after seconds of loading
    if mode not in MODES:
        _fail(f"--mode {mode!r} is not one of {', '.join(MODES)}")
    if extractive and mode not in SPAN_MODES:
        _fail(f"--extractive works with --mode fused or text, not {mode!r}; hybrid works too")
    if rerank is not None and rerank not in RERANKERS:
        _fail(f"--rerank {rerank!r} is not one of {', '.join(RERANKERS)}")
    if question is not None and not question.strip():
        _fail("the question is empty")
    if max_new_tokens < 1:
        _fail(f"--max-new-tokens {max_new_tokens} must be at least 1")
    if interactive and question is not None:
        _fail("give a question or --interactive, not both")
    compiled = compile_setting(compile_decode)
    options = dict(k=k, mode=mode, rerank=rerank, rerank_candidates=rerank_candidates)
    options["max_new_tokens"] = max_new_tokens
    if extractive:
        options["extractive"] = True
    show = _Printer(stream=stream and not as_json, quiet=quiet, as_json=as_json, show_passages=show_passages)
    retriever = open_retriever(index, model, embedder, device, compiled, gpu_vectors=question is None)
    with retriever:
        if question is not None:
            if not show.answer(retriever, question, options):
                raise typer.Exit(2)
            return
        failed = 0
        for asked in _questions(prompt=sys.stdin.isatty() and not quiet and not as_json):
            failed += not show.answer(retriever, asked, options)
        if failed:
            raise typer.Exit(1)


def _questions(prompt: bool) -> Iterator[str]:
    """Questions, one per line, until end of input (Ctrl-D) or a quit word; blank lines are skipped."""
    if prompt:
        typer.echo(f"ask a question; {' or '.join(QUIT_WORDS[:2])} or Ctrl-D to stop", err=True)
    while True:
        try:
            line = input("? ") if prompt else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            if prompt:
                typer.echo("", err=True)
            return
        if not prompt and not line:
            return  # end of the piped input
        line = line.strip()
        if line.lower() in QUIT_WORDS:
            return
        if line:
            yield line


class _Printer:
    """Prints one answer the way the options ask: streamed or whole, with sources, only the answer, or JSON."""

    def __init__(self, stream: bool, quiet: bool, as_json: bool, show_passages: bool) -> None:
        self.stream, self.quiet, self.as_json, self.show_passages = stream, quiet, as_json, show_passages

    def answer(self, retriever, question: str, options: dict) -> bool:
        """Answer and print; False (after one error line) when the question could not be answered."""
        from ragcompress.store import StoreError

        try:
            result = self._generate(retriever, question, options)
        except (StoreError, ValueError) as error:
            typer.echo(f"error: {one_line(error)}", err=True)
            return False
        if self.as_json:
            from ragcompress.serve.payloads import answer_json

            typer.echo(json.dumps(answer_json(result), ensure_ascii=False))
        elif not self.quiet:
            _print_sources(result, self.show_passages)
        return True

    def _generate(self, retriever, question: str, options: dict):
        if not self.stream:
            result = retriever.answer(question, **options)
            self._note(result.note)
            if not self.as_json:
                typer.echo(result.text.strip())
            return result
        pieces = retriever.stream(question, **options)
        self._note(pieces.note)
        started = False
        for piece in pieces:
            if not started:
                piece = piece.lstrip()  # the answer's leading space, as the whole answer is stripped
                started = bool(piece)
            typer.echo(piece, nl=False)
            sys.stdout.flush()
        typer.echo("")
        return pieces.answer

    def _note(self, note: str | None) -> None:
        if note and not self.quiet and not self.as_json:
            typer.echo(f"note: {note}", err=True)


def _print_sources(result, show_passages: bool) -> None:
    if not result.passages:
        typer.echo("Sources: none (answered without retrieval)")
        return
    from indexing.walk import printable  # a file name with a newline must not break the line

    typer.echo(f"Sources (most relevant first): {', '.join(map(printable, result.sources))}")
    if not show_passages:
        return
    order = "best first" if result.mode == "replug" else "least → most relevant, as fed to the model"
    typer.echo(f"Passages ({order}):")
    for number, passage in enumerate(result.passages, 1):
        score = f"score {passage.score:.3f}"
        if passage.rerank_score is not None:
            score += f", rerank {passage.rerank_score:.3f}"
        text = " ".join(passage.text.split())
        if len(text) > MAX_PASSAGE_CHARS:
            text = text[:MAX_PASSAGE_CHARS] + " …"
        typer.echo(
            f"[{number}] {printable(passage.doc_id)} (chars {passage.char_start}–{passage.char_end}, {score})\n    {text}"
        )


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
