"""Training data: tokenize documents (`ragcompress.data.documents`), pack them into fixed-length sequences.

Documents are joined with EOS and cut into sequences of the training length; the
train/validation split is decided per document by a hash of its key, so it never changes between runs
or machines. Packed tokens are cached as .npy (plain integer arrays) beside a JSON fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ragcompress.data.documents import DataError, TrainingDocument, read_documents


def stable_share(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone (SHA-256), the same on every machine and run."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def in_validation(key: str, fraction: float) -> bool:
    """Deterministic per-document split: the same key always lands on the same side."""
    return stable_share(key) < fraction


def _token_stream(
    documents: Iterator[TrainingDocument], tokenizer, eos_id: int, batch: int = 512
) -> Iterator[list[int]]:
    pending: list[str] = []

    def flush():
        encoded = tokenizer(pending, add_special_tokens=False)["input_ids"]
        pending.clear()
        return encoded

    for doc in documents:
        if doc.input_ids is not None:
            if pending:
                yield from (ids + [eos_id] for ids in flush())
            yield list(doc.input_ids) + [eos_id]
        else:
            pending.append(doc.text)
            if len(pending) >= batch:
                yield from (ids + [eos_id] for ids in flush())
    if pending:
        yield from (ids + [eos_id] for ids in flush())


def pack(token_lists, sequence_length: int, limit: int | None = None) -> np.ndarray:
    """Concatenate token lists and cut them into ``[n, sequence_length]`` (the remainder is dropped)."""
    dtype = np.uint32
    sequences, buffer = [], []
    held = 0
    for ids in token_lists:
        buffer.append(np.asarray(ids, dtype=dtype))
        held += len(ids)
        while held >= sequence_length:
            flat = np.concatenate(buffer)
            sequences.append(flat[:sequence_length])
            rest = flat[sequence_length:]
            buffer, held = ([rest] if len(rest) else []), len(rest)
            if limit is not None and len(sequences) >= limit:
                return np.stack(sequences)
    if not sequences:
        return np.zeros((0, sequence_length), dtype=dtype)
    return np.stack(sequences)


def _fingerprint(paths: list[str], extra: dict) -> str:
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for spec in paths:
        path = Path(spec)
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            stat = file.stat()
            digest.update(f"{file}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()


def _tokenizer_key(tokenizer) -> str:
    vocab = tokenizer.get_vocab()
    return hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest()[:16]


def build_sequences(
    train_paths: list[str],
    valid_paths: list[str],
    tokenizer,
    sequence_length: int,
    cache_dir: str | Path,
    valid_fraction: float = 0.01,
    text_field: str = "text",
    max_train: int | None = None,
    max_valid: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, valid)`` packed sequences, read from ``cache_dir`` when the inputs did not change."""
    cache_dir = Path(cache_dir)
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise DataError("the tokenizer has no EOS token; documents need a separator")
    extra = dict(
        sequence_length=sequence_length,
        valid_fraction=valid_fraction if not valid_paths else None,
        text_field=text_field,
        tokenizer=_tokenizer_key(tokenizer),
        max_train=max_train,
        max_valid=max_valid,
        train=list(train_paths),
        valid=list(valid_paths),
        split_keys="relative",  # caches made when keys held absolute paths split differently
    )
    fingerprint = _fingerprint(list(train_paths) + list(valid_paths), extra)
    meta_path = cache_dir / "sequences.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("fingerprint") == fingerprint:
        return np.load(cache_dir / "train.npy", mmap_mode="r"), np.load(
            cache_dir / "valid.npy", mmap_mode="r"
        )

    def documents(paths, side):
        for spec in paths:
            for doc in read_documents(spec, text_field):
                if side is None or in_validation(doc.key, valid_fraction) == side:
                    yield doc

    if valid_paths:
        train_docs, valid_docs = documents(train_paths, None), documents(valid_paths, None)
    else:
        train_docs, valid_docs = documents(train_paths, False), documents(train_paths, True)
    train = pack(_token_stream(train_docs, tokenizer, eos_id), sequence_length, max_train)
    valid = pack(_token_stream(valid_docs, tokenizer, eos_id), sequence_length, max_valid)
    if len(train) == 0:
        raise DataError(
            f"{train_paths}: fewer than {sequence_length} tokens of training text; add data or shorten sequences"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache_dir / "train.npy", train)
    np.save(cache_dir / "valid.npy", valid)
    meta = dict(fingerprint=fingerprint, train_sequences=len(train), valid_sequences=len(valid), **extra)
    meta_path.write_text(json.dumps(meta, indent=2))
    return train, valid


def batch_indices(
    step: int, micro: int, grad_accum: int, batch_size: int, world: int, rank: int, n: int, seed: int
) -> np.ndarray:
    """Rows of the packed array for (optimizer step, micro-batch, rank): a seeded permutation per epoch.

    A pure function of its arguments, so a resumed run reads exactly the batches the first run would
    have read, and the ranks of a distributed run read disjoint rows.
    """
    global_batch = batch_size * world
    first = (step * grad_accum + micro) * global_batch + rank * batch_size
    positions = np.arange(first, first + batch_size)
    rows = np.empty(batch_size, dtype=np.int64)
    for epoch in np.unique(positions // n):
        order = np.random.default_rng([seed, int(epoch)]).permutation(n)
        selected = positions // n == epoch
        rows[selected] = order[positions[selected] % n]
    return rows
