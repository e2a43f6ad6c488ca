"""Documents for training and perplexity: read text from many kinds of source, in a fixed order.

Sources (any mix): directories of .txt/.md/.rst/.jsonl files, single files of those kinds, local HF
datasets (``save_to_disk`` folders, .json/.parquet files), and pre-tokenized data (an ``input_ids``
column or field). Each document has a stable key (its path under the data path given, plus a row id or
line), which training uses to split train/validation the same way on every machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TEXT_SUFFIXES = {".txt", ".md", ".rst"}


class DataError(ValueError):
    """A training-data path that cannot be read."""


@dataclass
class TrainingDocument:
    # stable identity, used for the split: the file's path relative to the data path given (its name when
    # a file was given) and the row's "id" (else its line), so moving or copying a corpus keeps its split
    key: str
    text: str | None = None
    input_ids: list[int] | None = None


def _is_hf_dataset_dir(path: Path) -> bool:
    return (
        (path / "dataset_info.json").is_file()
        or (path / "state.json").is_file()
        or (path / "dataset_dict.json").is_file()
    )


def _rows_to_documents(
    rows, where: str, key: str, text_field: str, first: int = 0
) -> Iterator[TrainingDocument]:
    """Documents of table rows; ``where`` names them in errors, ``key`` (+ row id or number) splits them."""
    for index, row in enumerate(rows, first):
        row_key = f"{key}#{row['id']}" if row.get("id") is not None else f"{key}:{index}"
        if "input_ids" in row and row["input_ids"] is not None:
            yield TrainingDocument(row_key, input_ids=[int(t) for t in row["input_ids"]])
        elif text_field in row:
            text = row[text_field]
            if isinstance(text, str) and text.strip():
                yield TrainingDocument(row_key, text=text)
        else:
            raise DataError(
                f"{where}: row {index} has neither {text_field!r} nor 'input_ids'; set text_field"
            )


def _read_jsonl(path: Path, key: str, text_field: str) -> Iterator[TrainingDocument]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{number}: not valid JSON ({exc.msg}); fix or remove the line"
                ) from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object per line")
            yield from _rows_to_documents([row], f"{path}:{number}", key, text_field, first=number)


def _read_hf(path: Path, key: str, text_field: str) -> Iterator[TrainingDocument]:
    import datasets  # only for HF-dataset sources: importing it costs about a second

    if path.is_dir():
        loaded = datasets.load_from_disk(str(path))
    else:
        builder = "json" if path.suffix == ".json" else "parquet"
        loaded = datasets.load_dataset(builder, data_files=str(path), split="train")
    parts = loaded.values() if isinstance(loaded, datasets.DatasetDict) else [loaded]
    for part_index, part in enumerate(parts):
        yield from _rows_to_documents(part, f"{path}[{part_index}]", f"{key}[{part_index}]", text_field)


def read_documents(spec: str | Path, text_field: str = "text") -> Iterator[TrainingDocument]:
    """Every document of one data path, in a deterministic order."""
    path = Path(spec)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory; check the train_data/valid_data paths")
    if path.is_dir() and _is_hf_dataset_dir(path):
        yield from _read_hf(path, path.name, text_field)
        return
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
    )
    for file in files:
        suffix = file.suffix.lower()
        key = file.name if file == path else file.relative_to(path).as_posix()
        if suffix in TEXT_SUFFIXES:
            text = file.read_text(encoding="utf-8", errors="replace")
            if text.strip():
                yield TrainingDocument(key, text=text)
        elif suffix == ".jsonl":
            yield from _read_jsonl(file, key, text_field)
        elif suffix in (".json", ".parquet"):
            yield from _read_hf(file, key, text_field)
        elif path.is_file():
            raise DataError(
                f"{file}: unsupported file type {suffix!r}; use .txt, .md, .rst, .jsonl, .json or .parquet"
            )


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in file.relative_to(root).parts)
