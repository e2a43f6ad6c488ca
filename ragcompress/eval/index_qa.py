"""Retrieval-QA through the product: a real index of the corpus, answers from ``Retriever.answer_batch``.

    index_corpus(corpus)  ─▶  Retriever(index).answer_batch(questions, k, mode)  ─▶  EM / F1 / containment

What is measured is what a user gets: the corpus is read, chunked, embedded, compressed and stored with
quantized vectors by ``indexing.pipeline.index_corpus`` (incrementally, so a second run over the same
corpus and settings reuses the index), and every question is answered by the Retriever. Recall@k is at
chunk level: a question counts as found when one of its k retrieved chunks belongs to a gold document.

One run is one (vector dtype, k) pair; a sweep over several dtypes builds one index per dtype and answers
every k from it. Mode ``none`` reads no index, so it is answered once and reported in every run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragcompress.data.qa_dataset import DatasetFormatError, read_questions
from ragcompress.eval.qa import QAResult
from ragcompress.eval.qa_metrics import (
    ANSWER_KINDS,
    answer_kind,
    contains_answer,
    exact_match,
    f1,
    first_answer_span,
)

EVAL_MODES = (
    "none",
    "text",
    "fused",
    "text-extractive",
    "fused-extractive",
    "replug",
    "hybrid",
    "hybrid-extractive",
)


class QAEvalError(ValueError):
    """Input or settings the evaluation cannot use, as one line naming the file or option at fault."""


@dataclass(frozen=True)
class IndexSettings:
    """What the index is built with; the names follow ``ragcompress index``'s options."""

    model: str = "default"
    embedder: str = "default"
    chunk_tokens: int = 512
    overlap: int = 64
    faiss: str = "flat"


@dataclass
class QASet:
    corpus: Path  # a folder of documents (or one file) for index_corpus
    questions_path: Path
    questions: list[dict]  # {"id", "question", "answers", "doc_ids"[, "kind"]}


def parse_modes(text: str, extractive: bool = False) -> list[str]:
    """``"none,text,fused"`` → modes; ``extractive`` turns text, fused and hybrid into their extractive
    forms."""
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in EVAL_MODES]
    if unknown or not chosen:
        raise QAEvalError(
            f"--modes: {unknown[0] if unknown else text!r} is not one of {', '.join(EVAL_MODES)}"
        )
    if extractive:
        chosen = [f"{m}-extractive" if m in ("text", "fused", "hybrid") else m for m in chosen]
    return list(dict.fromkeys(chosen))


def parse_ks(text: str) -> list[int]:
    """``"1,3,5"`` → [1, 3, 5] (sorted, no repeats); every k must be at least 1."""
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise QAEvalError(f"--k {text!r}: give whole numbers separated by commas, e.g. --k 1,3,5") from None
    if not ks or ks[0] < 1:
        raise QAEvalError(f"--k {text!r}: every k must be at least 1")
    return ks


def load_qa_set(data: Path, questions: Path | None = None, limit: int | None = None) -> QASet:
    """Either a dir holding ``corpus/`` and ``questions.jsonl``, or a corpus and a questions file."""
    if questions is None:
        corpus, questions = data / "corpus", data / "questions.jsonl"
        if not corpus.is_dir():
            raise QAEvalError(
                f"{data}: no corpus/ folder; pass a dataset dir (corpus/ + questions.jsonl) or CORPUS QUESTIONS"
            )
    else:
        corpus = data
        if not corpus.exists():
            raise QAEvalError(f"{corpus}: corpus not found; pass a folder of documents")
    try:
        records = read_questions(questions)
    except DatasetFormatError as error:
        raise QAEvalError(str(error)) from None
    if not records:
        raise QAEvalError(f"{questions}: no questions; write one JSON object per line")
    return QASet(corpus, questions, records[:limit] if limit else records)


def check_gold(qa: QASet, doc_ids: set[str]) -> None:
    """Every gold doc id must name a document of the index (built from the corpus), or recall is wrong."""
    for question in qa.questions:
        for doc_id in question["doc_ids"]:
            if doc_id not in doc_ids:
                raise QAEvalError(
                    f"{qa.questions_path}: question {question['id']!r} names doc_id {doc_id!r}, which is not "
                    f"a document of {qa.corpus}; doc ids are paths inside the corpus without the suffix"
                )


def kinds_of(questions: Sequence[dict]) -> tuple[dict[str, str], str]:
    """Each question's kind, and where kinds came from: the data's ``kind`` field when every question
    has one, else the form of the first answer (year, number, name, word; see ``answer_kind``)."""
    if all(isinstance(q.get("kind"), str) and q["kind"] for q in questions):
        return {q["id"]: q["kind"] for q in questions}, "data"
    return {q["id"]: answer_kind(q["answers"]) for q in questions}, "answer"


def default_index_root(corpus: Path, settings: IndexSettings) -> Path:
    """A cache folder per (corpus path, index settings): evaluation indexes never touch the user's."""
    from ragcompress.defaults import cache_root

    key = f"{corpus.resolve()}|{settings.model}|{settings.embedder}|{settings.chunk_tokens}|{settings.overlap}|{settings.faiss}"
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in corpus.resolve().name) or "corpus"
    return cache_root() / "eval-indexes" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def index_dirs(index: Path | None, corpus: Path, settings: IndexSettings, dtypes: Sequence[str]) -> dict:
    """Where each dtype's index lives: ``--index`` itself for one dtype (so a user's index can be
    evaluated as is), ``--index/<dtype>`` for several, and a cache folder when no --index is given."""
    if index is None:
        return {d: default_index_root(corpus, settings) / d for d in dtypes}
    return {dtypes[0]: index} if len(dtypes) == 1 else {d: index / d for d in dtypes}


def build_index(
    qa: QASet, index_dir: Path, settings: IndexSettings, dtype: str, models, rebuild: bool, owned: bool
):
    """``index_corpus`` with loaded models; an index of ours built with other settings is started over,
    one the user named is not (their --rebuild decides)."""
    from indexing.pipeline import IndexingError, index_corpus
    from ragcompress.store import StoreError, StoreMismatchError

    def run(rebuild_now: bool):
        return index_corpus(
            qa.corpus,
            index_dir,
            model=models[0],
            embedder=models[1],
            chunk_tokens=settings.chunk_tokens,
            overlap=settings.overlap,
            vector_dtype=dtype,
            faiss_kind=settings.faiss,
            rebuild=rebuild_now,
            progress=False,
        )

    try:
        try:
            return run(rebuild)
        except StoreMismatchError:
            if not owned:
                raise
            return run(True)
    except StoreMismatchError as error:
        raise QAEvalError(f"{error}; pass --rebuild to start {index_dir} over, or another --index") from None
    except (IndexingError, StoreError) as error:
        raise QAEvalError(str(error)) from None


def answer_mode(
    retriever, questions: Sequence[dict], k: int, mode: str, batch_size: int, max_new_tokens: int
):
    """``answer_batch`` in one mode: (answers, wall seconds, the call's stage timings)."""
    base = mode.removesuffix("-extractive")
    extra = {"extractive": True} if mode.endswith("-extractive") else {}
    started = time.perf_counter()
    answers = retriever.answer_batch(
        [q["question"] for q in questions],
        k=k,
        mode=base,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        **extra,
    )
    seconds = time.perf_counter() - started
    return answers, seconds, dict(answers[0].timings) if answers else {}


def score_answers(
    questions: Sequence[dict], answers, seconds: float, timings: dict
) -> tuple[dict, list[dict]]:
    """Per-mode scores and per-question rows. Recall counts a question when a retrieved chunk belongs
    to a gold document; it is None for answers made without retrieval and for questions without gold."""
    rows = []
    for question, answer in zip(questions, answers):
        span = first_answer_span(answer.text)
        gold = set(question["doc_ids"])
        retrieved = answer.mode != "none"
        rows.append(
            {
                "id": question["id"],
                "generated": answer.text,
                "answer": span,
                "em": exact_match(span, question["answers"]),
                "f1": f1(span, question["answers"]),
                "contains": contains_answer(answer.text, question["answers"]),
                "hit": float(any(p.doc_id in gold for p in answer.passages)) if retrieved and gold else None,
                "sources": answer.sources,
                "prompt_tokens": answer.prompt_tokens,
                "softprompt_slots": answer.softprompt_slots,
            }
        )
    n = len(rows)
    hits = [r["hit"] for r in rows if r["hit"] is not None]
    scores = {
        **_means(rows),
        "recall_at_k": sum(hits) / len(hits) if hits else None,
        # prompt cost per question: text tokens, and summary vectors read as soft-prompt slots
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows) / n if n else 0.0,
        "softprompt_slots": sum(r["softprompt_slots"] for r in rows) / n if n else 0.0,
        "seconds_per_question": seconds / n if n else 0.0,
        "stage_seconds_per_question": {s: v / n for s, v in timings.items()} if n else {},
    }
    return scores, rows


def _means(rows: Sequence[dict]) -> dict:
    n = len(rows)
    return {key: (sum(r[key] for r in rows) / n if n else 0.0) for key in ("em", "f1", "contains")} | {"n": n}


def by_kind(rows: Sequence[dict], kinds: dict[str, str]) -> dict[str, dict]:
    """EM / F1 / containment per kind; the kinds' n add up to the mode's n."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(kinds[row["id"]], []).append(row)
    # The answer-form kinds in their usual order (year, number, name, word), any others by name.
    order = sorted(grouped, key=lambda kind: (ANSWER_KINDS.index(kind) if kind in ANSWER_KINDS else 99, kind))
    return {kind: _means(grouped[kind]) for kind in order}


def gold_ranks(retriever, questions: Sequence[dict], k: int) -> list[int | None]:
    """1-based rank of the first chunk of a gold document in each question's top k (None: not found)."""
    found = retriever.search_batch([q["question"] for q in questions], k)
    ranks = []
    for question, passages in zip(questions, found):
        gold = set(question["doc_ids"])
        ranks.append(next((i + 1 for i, p in enumerate(passages) if p.doc_id in gold), None))
    return ranks


def run_sweep(
    qa: QASet,
    settings: IndexSettings,
    dtypes: Sequence[str],
    ks: Sequence[int],
    modes: Sequence[str],
    index: Path | None = None,
    models=None,
    device: str | None = None,
    rebuild: bool = False,
    batch_size: int = 8,
    max_new_tokens: int = 24,
    log: Callable[[str], None] = lambda message: None,
) -> list[QAResult]:
    """One ``QAResult`` per (dtype, k), dtypes outer. ``models`` = ``(Compressor, Embedder)`` already
    loaded (or their older tuple forms), or None to load ``settings.model`` / ``settings.embedder`` on
    ``device``."""
    from ragcompress.compressor import Compressor, ModelLoadError
    from ragcompress.defaults import dtype_name
    from ragcompress.embedder import Embedder
    from ragcompress.retrieval import Retriever

    try:
        if models is None:
            models = (settings.model, settings.embedder)
        models = (Compressor.of(models[0], device=device), Embedder.of(models[1], device=device))
    except ModelLoadError as error:
        raise QAEvalError(f"--model/--embedder: {error}") from None
    kinds, kind_source = kinds_of(qa.questions)
    dirs = index_dirs(index, qa.corpus, settings, dtypes)
    results: list[QAResult] = []
    answered: dict = {}  # mode "none" reads no index: answered once, reported in every run
    for dtype in dtypes:
        log(f"indexing {qa.corpus} ({dtype} vectors) into {dirs[dtype]}")
        report = build_index(qa, dirs[dtype], settings, dtype, models, rebuild, owned=index is None)
        log(f"  {report.stats.chunks} chunks, {report.chunks} (re)compressed in {report.seconds:.1f} s")
        with Retriever(dirs[dtype], model=models[0], embedder=models[1]) as retriever:
            check_gold(qa, {d.doc_id for d in retriever.store.documents()})
            ranks = gold_ranks(retriever, qa.questions, max(ks))
            for k in ks:
                result = _run(
                    retriever, qa, k, modes, ranks, kinds, batch_size, max_new_tokens, answered, log
                )
                result.meta = _meta(qa, settings, dtype, k, report, ranks, kind_source, max_new_tokens)
                result.meta["model_dtype"] = dtype_name(models[0].dtype)
                results.append(result)
    return results


def _run(retriever, qa, k, modes, ranks, kinds, batch_size, max_new_tokens, answered, log) -> QAResult:
    with_gold = [r for q, r in zip(qa.questions, ranks) if q["doc_ids"]]
    recall = sum(r is not None and r <= k for r in with_gold) / len(with_gold) if with_gold else None
    result = QAResult(k=k, recall_at_k=recall)
    for mode in modes:
        if mode == "none" and "none" in answered:
            scores, rows = answered["none"]
        else:
            log(f"  k={k} {mode}: answering {len(qa.questions)} questions")
            answers, seconds, timings = answer_mode(
                retriever, qa.questions, k, mode, batch_size, max_new_tokens
            )
            scores, rows = score_answers(qa.questions, answers, seconds, timings)
            if mode == "none":
                answered["none"] = scores, rows
        result.scores[mode], result.predictions[mode] = scores, rows
        result.scores_by_kind[mode] = by_kind(result.predictions[mode], kinds)
    return result


def _meta(qa, settings, dtype, k, report, ranks, kind_source, max_new_tokens) -> dict:
    stats = report.stats
    return {
        "path": "index",  # made through index_corpus + Retriever (the old in-memory path leaves no meta)
        "corpus": str(qa.corpus),
        "questions_file": str(qa.questions_path),
        "questions": len(qa.questions),
        "vector_dtype": dtype,
        "k": k,
        "model": stats.compressor,
        "embedder": stats.embedder,
        "chunk_tokens": settings.chunk_tokens,
        "overlap": settings.overlap,
        "faiss": settings.faiss,
        "max_new_tokens": max_new_tokens,
        "kind_source": kind_source,
        "gold_rank": {q["id"]: r for q, r in zip(qa.questions, ranks)},
        "index": {
            "dir": str(report.index_dir),
            "documents": stats.documents,
            "chunks": stats.chunks,
            "tokens": stats.tokens,
            "bytes_per_token": stats.bytes_per_token,
            "disk_bytes_per_token": stats.disk_bytes_per_token,
            "build_seconds": report.seconds,
            "chunks_compressed": report.chunks,
        },
    }
