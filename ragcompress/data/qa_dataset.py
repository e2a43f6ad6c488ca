"""The QA dataset format of docs/design.md: a corpus folder of documents and a `questions.jsonl`.

On disk (`write`/`read`): `corpus/<doc_id>.txt`, `questions.jsonl` with
`{"id", "question", "answers": [...], "doc_ids": [...]}` per line (+ optional fields such as `kind`),
and for generated sets an extra `entities.jsonl` (kind and group per document) that stage-2 training
uses to pick hard distractors. Any user's set in this format works; the synthetic generator
(`ragcompress_tools.synthqa`) and the real-document builder write exactly this.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DatasetFormatError", "SynthQA", "read", "read_questions", "write"]


class DatasetFormatError(ValueError):
    """A QA dataset on disk does not follow the evaluation data format; the message names file and line."""


@dataclass
class SynthQA:
    """A QA dataset: documents, questions about them, and (for generated sets) what each document is."""

    documents: list[tuple[str, str]]  # (doc_id, text), sorted by doc_id
    questions: list[dict]  # {"id", "question", "answers": [...], "doc_ids": [...]}
    # doc_id -> {"kind", "group", "name", "key"}; empty for datasets that come without entities.jsonl
    entities: dict[str, dict] = field(default_factory=dict)


def write(dataset: SynthQA, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write `corpus/<doc_id>.txt`, `questions.jsonl` (and `entities.jsonl` if known) under `out_dir`.

    The same dataset always gives byte-identical files. An existing dataset there is an error unless
    `overwrite`, which first removes its `corpus/*.txt` so no stale document survives.
    """
    root = Path(out_dir)
    corpus = root / "corpus"
    stale = sorted(corpus.glob("*.txt")) if corpus.is_dir() else []
    if (stale or (root / "questions.jsonl").exists()) and not overwrite:
        raise FileExistsError(f"{root} already holds a QA dataset; pass overwrite=True to replace it")
    for path in stale:
        path.unlink()
    corpus.mkdir(parents=True, exist_ok=True)
    for doc_id, text in dataset.documents:
        if not doc_id or Path(doc_id).name != doc_id or doc_id.startswith("."):
            raise ValueError(f"doc_id {doc_id!r} cannot be a file name")
        (corpus / f"{doc_id}.txt").write_text(text + "\n", encoding="utf-8", newline="\n")
    entities_path = root / "entities.jsonl"
    if dataset.entities:
        _write_jsonl(entities_path, [{"doc_id": doc_id, **meta} for doc_id, meta in dataset.entities.items()])
    elif entities_path.exists():
        entities_path.unlink()
    _write_jsonl(root / "questions.jsonl", dataset.questions)  # last: a complete dataset once it exists
    return root


def _write_jsonl(path: Path, records: Iterable[dict]) -> None:
    """Write to a temporary file and rename it into place, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(partial, path)


def read(out_dir: str | Path) -> SynthQA:
    """Load a QA dataset in the evaluation data format (ours or any user's).

    Malformed input raises `DatasetFormatError` with one line naming the file (and line) at fault.
    """
    root = Path(out_dir)
    corpus, questions_path = root / "corpus", root / "questions.jsonl"
    if not corpus.is_dir():
        raise DatasetFormatError(f"{corpus}: corpus directory not found")
    if not questions_path.is_file():
        raise DatasetFormatError(f"{questions_path}: file not found")
    documents = []
    for path in sorted(corpus.glob("*.txt"), key=lambda p: p.stem):
        try:
            documents.append((path.stem, path.read_text(encoding="utf-8").strip()))
        except UnicodeDecodeError as error:
            raise DatasetFormatError(f"{path}: not UTF-8 text ({error.reason})") from None
    questions = read_questions(questions_path, {doc_id for doc_id, _ in documents})
    entities = {}
    if (root / "entities.jsonl").is_file():
        for record, where in _read_jsonl(root / "entities.jsonl"):
            fields = ("doc_id", "kind", "group", "name", "key")
            if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in fields):
                raise DatasetFormatError(
                    f"{where}: expected an object with string fields {', '.join(fields)}"
                )
            entities[record["doc_id"]] = {k: record[k] for k in fields[1:]}
    return SynthQA(documents=documents, questions=questions, entities=entities)


def read_questions(path: str | Path, known_doc_ids: set[str] | None = None) -> list[dict]:
    """The questions of a `questions.jsonl`, checked line by line (`DatasetFormatError` names the line).

    Gold doc ids are checked against `known_doc_ids` when given; a caller that only learns the corpus's
    ids later (from an index of it) passes None and checks them itself.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found")
    seen: set[str] = set()
    return [_checked_question(r, where, known_doc_ids, seen) for r, where in _read_jsonl(path)]


def _read_jsonl(path: Path) -> Iterator[tuple[object, str]]:
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                yield json.loads(line), where
            except json.JSONDecodeError as error:
                raise DatasetFormatError(
                    f"{where}: invalid JSON ({error.msg}, column {error.colno})"
                ) from None


def _checked_question(record: object, where: str, known_doc_ids: set[str] | None, seen_ids: set[str]) -> dict:
    def fail(problem: str) -> DatasetFormatError:
        return DatasetFormatError(f"{where}: {problem}")

    if not isinstance(record, dict):
        raise fail(f"expected a JSON object, got {type(record).__name__}")
    for key in ("id", "question", "answers", "doc_ids"):
        if key not in record:
            raise fail(f"missing key {key!r}")
    question_id = record["id"]
    # Integer ids are common in user data; they are read as strings so ids compare one way.
    if isinstance(question_id, bool) or not isinstance(question_id, str | int):
        raise fail("'id' must be a string or an integer")
    question_id = str(question_id)
    if question_id in seen_ids:
        raise fail(f"duplicate question id {question_id!r}")
    seen_ids.add(question_id)
    if not isinstance(record["question"], str) or not record["question"].strip():
        raise fail("'question' must be a non-empty string")
    answers = record["answers"]
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        raise fail("'answers' must be a non-empty list of strings")
    doc_ids = record["doc_ids"]
    if not isinstance(doc_ids, list) or not all(isinstance(d, str) for d in doc_ids):
        raise fail("'doc_ids' must be a list of strings")
    for doc_id in doc_ids:
        if known_doc_ids is not None and doc_id not in known_doc_ids:
            raise fail(f"doc_id {doc_id!r} has no file corpus/{doc_id}.txt")
    extra = {k: v for k, v in record.items() if k not in ("id", "question", "answers", "doc_ids")}
    return {
        "id": question_id,
        "question": record["question"],
        "answers": answers,
        "doc_ids": doc_ids,
        **extra,
    }
