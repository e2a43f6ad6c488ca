"""``manifest.json``: what built the store (models, dtype, chunking, index kind) and what it holds.

The manifest pins everything that makes stored vectors comparable: summary vectors from another
compressor, embeddings from another embedder or another vector dtype must never be mixed into one store.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ragcompress.store.errors import StoreFormatError, StoreMismatchError
from ragcompress.store.fsutil import atomic_write_bytes
from ragcompress.store.quantize import SCALE_DTYPES, VECTOR_DTYPES

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# Written into every manifest so a store is recognisable beyond doubt: plenty of folders (web apps,
# browser extensions) hold a file named manifest.json, and --rebuild must never mistake one for ours.
STORE_FORMAT = "ragcompress-store"
# What a manifest written before the marker existed always has; with no "format" key these identify one.
LEGACY_KEYS = ("format_version", "compressor", "embedder", "vector_dtype")
FAISS_KINDS = ("flat", "ivf", "hnsw")
# "cosine" L2-normalises embeddings and queries and searches by inner product; "ip" uses them as given.
METRICS = ("cosine", "ip")


@dataclass(frozen=True)
class CompressorInfo:
    id: str
    weights_hash: str
    summary_length: int
    hidden_size: int


@dataclass(frozen=True)
class EmbedderInfo:
    id: str
    dim: int


@dataclass(frozen=True)
class ChunkingInfo:
    chunk_tokens: int = 512
    overlap: int = 0
    tokenizer: str = ""


@dataclass(frozen=True)
class FaissInfo:
    kind: str = "flat"
    metric: str = "cosine"
    # Search-time knobs: they may differ between runs without making the stores incompatible.
    nprobe: int = 16
    hnsw_m: int = 32
    ef_search: int = 64


@dataclass
class Counts:
    """What the store held at ``generation``; a hint only, the SQLite metadata is authoritative."""

    generation: int = 0
    documents: int = 0
    chunks: int = 0
    tokens: int = 0
    vectors: int = 0


@dataclass
class Manifest:
    compressor: CompressorInfo
    embedder: EmbedderInfo
    vector_dtype: str = "fp16"
    scale_dtype: str = "fp32"
    chunking: ChunkingInfo = field(default_factory=ChunkingInfo)
    faiss: FaissInfo = field(default_factory=FaissInfo)
    counts: Counts = field(default_factory=Counts)
    format_version: int = FORMAT_VERSION
    created_at: str = ""
    format: str = STORE_FORMAT

    def __post_init__(self) -> None:
        problems = validation_problems(self)
        if problems:
            raise StoreFormatError("invalid manifest: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            return cls(
                compressor=_build(CompressorInfo, data["compressor"]),
                embedder=_build(EmbedderInfo, data["embedder"]),
                vector_dtype=data["vector_dtype"],
                scale_dtype=data.get("scale_dtype", "fp32"),
                chunking=_build(ChunkingInfo, data.get("chunking", {})),
                faiss=_build(FaissInfo, data.get("faiss", {})),
                counts=_build(Counts, data.get("counts", {})),
                format_version=data["format_version"],
                created_at=data.get("created_at", ""),
                format=data.get("format", STORE_FORMAT),
            )
        except (KeyError, TypeError) as error:
            raise StoreFormatError(f"invalid manifest: missing or malformed field {error}") from None


def _build(kind: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise TypeError(kind.__name__)
    known = {f.name for f in fields(kind)}
    # Unknown keys are ignored so a newer minor writer's extra fields don't lock out older readers.
    return kind(**{k: v for k, v in data.items() if k in known})


def validation_problems(manifest: Manifest) -> list[str]:
    problems = []
    if manifest.format != STORE_FORMAT:
        problems.append(f"format {manifest.format!r} is not {STORE_FORMAT!r}")
    if manifest.format_version != FORMAT_VERSION:
        problems.append(f"format_version {manifest.format_version} (this ragcompress reads {FORMAT_VERSION})")
    if manifest.vector_dtype not in VECTOR_DTYPES:
        problems.append(f"vector_dtype {manifest.vector_dtype!r} not one of {VECTOR_DTYPES}")
    if manifest.scale_dtype not in SCALE_DTYPES:
        problems.append(f"scale_dtype {manifest.scale_dtype!r} not one of {SCALE_DTYPES}")
    if manifest.faiss.kind not in FAISS_KINDS:
        problems.append(f"faiss kind {manifest.faiss.kind!r} not one of {FAISS_KINDS}")
    if manifest.faiss.metric not in METRICS:
        problems.append(f"faiss metric {manifest.faiss.metric!r} not one of {METRICS}")
    if manifest.embedder.dim <= 0:
        problems.append(f"embedder dim {manifest.embedder.dim} must be positive")
    if manifest.compressor.hidden_size <= 0:
        problems.append(f"compressor hidden_size {manifest.compressor.hidden_size} must be positive")
    return problems


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_manifest(**kwargs: Any) -> Manifest:
    """A manifest stamped with the creation time (UTC)."""
    kwargs.setdefault("created_at", utc_now())
    return Manifest(**kwargs)


def is_store_manifest(data: Any) -> bool:
    """Whether parsed manifest JSON is one of ours: the format marker, or (older stores) all the keys
    every manifest has had since format 1 and no marker of another format."""
    if not isinstance(data, dict):
        return False
    if "format" in data:
        return data["format"] == STORE_FORMAT
    return all(key in data for key in LEGACY_KEYS)


def read_manifest(directory: Path) -> Manifest:
    path = Path(directory) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreFormatError(f"{directory} is not a ragcompress store (no {MANIFEST_NAME})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StoreFormatError(f"{path} is unreadable: {error}") from None
    if not isinstance(data, dict):
        raise StoreFormatError(f"{path} is not a JSON object")
    if not is_store_manifest(data):
        raise StoreFormatError(
            f"{directory} is not a ragcompress index (its {MANIFEST_NAME} belongs to something else)"
        )
    return Manifest.from_dict(data)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    text = json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(Path(directory) / MANIFEST_NAME, text.encode("utf-8"))


def _describe_difference(stored: Manifest, wanted: Manifest) -> str | None:
    """The first build setting that differs, phrased for the error message; None when compatible."""
    pairs = [
        ("compressor", stored.compressor, wanted.compressor),
        ("embedder", stored.embedder, wanted.embedder),
        ("vector dtype", stored.vector_dtype, wanted.vector_dtype),
        ("scale dtype", stored.scale_dtype, wanted.scale_dtype),
        ("chunking", stored.chunking, wanted.chunking),
        ("faiss index", (stored.faiss.kind, stored.faiss.metric), (wanted.faiss.kind, wanted.faiss.metric)),
    ]
    for what, old, new in pairs:
        if old != new:
            return f"{what} {_short(old)}, not {_short(new)}"
    return None


def _short(value: Any) -> str:
    if isinstance(value, (CompressorInfo, EmbedderInfo, ChunkingInfo)):
        parts = [f"{k}={v}" for k, v in asdict(value).items()]
        return "(" + ", ".join(parts) + ")"
    return repr(value)


def ensure_compatible(stored: Manifest, wanted: Manifest, where: Path) -> None:
    """Refuse to write vectors built with other settings into an existing store."""
    difference = _describe_difference(stored, wanted)
    if difference is not None:
        raise StoreMismatchError(
            f"the index at {where} was built with {difference}; "
            "refusing to mix them, re-run with --rebuild to start over"
        )
