"""Indexing throughput (chunks/s) of `ragcompress index` with every default, on a fixed corpus (issue 5).

The corpus is the first documents of ``data/corpus/*/test.jsonl`` (taken round-robin over the sources, in
file order) until they make at least ``--chunks`` chunks at the default 512 tokens / 64 overlap; without
the built corpus, installed package documentation stands in. The run is ``index_corpus`` with the CLI's
defaults (default compressor and embedder, fp16 vectors, flat FAISS, local engine, batch 8 on CPU), which
is exactly what ``ragcompress index CORPUS`` calls. A second run on the unchanged corpus measures the
incremental no-op.

    python benchmarks/index_throughput.py
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from indexing.chunker import chunk_documents
from indexing.pipeline import index_corpus
from indexing.readers import read_corpus
from ragcompress.defaults import dtype_name, load_tokenizer, pick_device, pick_dtype

sys.path.insert(0, str(Path(__file__).parent))
from quantization import fallback_texts  # noqa: E402
from readme_sections import background_jobs, cpu_name, save_result  # noqa: E402

HERE = Path(__file__).parent


def source_documents() -> list[tuple[str, str]]:
    """(name, text) of candidate documents, round-robin over the sources."""
    per_source = []
    for path in sorted(glob.glob("data/corpus/*/test.jsonl")):
        with open(path, encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        per_source.append([(f"{Path(path).parent.name}-{i:04d}", r["text"]) for i, r in enumerate(records)])
    if not per_source:
        docs = fallback_texts(Path(tempfile.mkdtemp()) / "package-docs")
        per_source = [[(p.stem, p.read_text(encoding="utf-8")) for p in sorted(docs.iterdir())]]
    mixed = []
    for i in range(max(len(s) for s in per_source)):
        mixed.extend(s[i] for s in per_source if i < len(s))
    return mixed


def build_corpus(directory: Path, chunks: int) -> int:
    """Write documents into ``directory`` until they hold at least ``chunks`` chunks; returns the count."""
    tokenizer = load_tokenizer()
    directory.mkdir(parents=True)
    total = 0
    for name, text in source_documents():
        (directory / f"{name}.txt").write_text(text, encoding="utf-8")
        (doc,) = [d for d in read_corpus(directory / f"{name}.txt").documents]
        total += len(chunk_documents([doc], tokenizer, 512, 64))
        if total >= chunks:
            return total
    return total


def markdown(result: dict) -> str:
    t = result["timings"]
    rows = [
        "## Indexing throughput: `ragcompress index` with the defaults (issue 5)",
        "",
        f"{result['documents']} documents, {result['chunks']} chunks of ≤ 512 tokens ({result['tokens']:,} tokens) "
        f"from {result['data']}; default compressor (SmolLM2-135M + adapter, κ = 50; "
        f"{result.get('dtype', 'float32')}), all-MiniLM-L6-v2, fp16 "
        "vectors, flat FAISS, local engine, batch 8.",
        "",
        "| device | chunks | total s | chunks/s (total) | chunks/s (excl. model load) | load s | embed s | compress s | write s | no-op re-run s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result['device']} | {result['chunks']} | {result['seconds']:.1f} | {result['chunks_per_second']:.2f} | "
        f"{result['chunks_per_second_excluding_load']:.2f} | {t['load']:.1f} | {t['embed']:.1f} | "
        f"{t['compress']:.1f} | {t['write']:.1f} | {result['noop_seconds']:.1f} |",
        "",
        f"torch {result['torch']}, {result['threads']} threads. {result['note']}",
        "",
        f"Command: `{result['command']}` (result: `{result.get('result', 'results/index_throughput.json')}`, "
        f"{result['date']}).",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "index_throughput.json")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()

    busy = background_jobs()
    work = Path(tempfile.mkdtemp(prefix="index-throughput-"))
    build_corpus(work / "corpus", args.chunks)
    report = index_corpus(work / "corpus", work / "index", progress=False)
    noop = index_corpus(work / "corpus", work / "index", progress=False)
    assert noop.chunks == 0 and noop.unchanged == report.added
    busy = sorted(set(busy) | set(background_jobs()))
    processing = report.seconds - report.timings["load"]
    chosen_dtype = (
        f"RAGCOMPRESS_DTYPE={os.environ['RAGCOMPRESS_DTYPE']} " if "RAGCOMPRESS_DTYPE" in os.environ else ""
    )
    result = {
        "device": cpu_name() if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
        "data": "data/corpus/*/test.jsonl"
        if glob.glob("data/corpus/*/test.jsonl")
        else "installed package docs",
        "documents": report.added,
        "chunks": report.chunks,
        "tokens": report.tokens,
        "seconds": report.seconds,
        "chunks_per_second": report.chunks_per_second,
        "chunks_per_second_excluding_load": report.chunks / processing,
        "timings": report.timings,
        "noop_seconds": noop.seconds,
        "bytes_per_token": report.stats.bytes_per_token,
        "disk_bytes_per_token": report.stats.disk_bytes_per_token,
        "torch": torch.__version__,
        "dtype": dtype_name(pick_dtype(pick_device())),  # the compressor's, as loaded
        "threads": torch.get_num_threads(),
        "note": (
            f"Another CPU job ({'; '.join(b.split(None, 1)[1][:60] for b in busy)}) ran at the same time on "
            "these 2 cores, so this is a lower bound."
            if busy
            else "Nothing else was running."
        ),
        "command": chosen_dtype + "python " + " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "result": os.path.relpath(args.out.resolve(), HERE.resolve()),
    }
    save_result(result, args.out, "index-throughput", markdown(result), readme=not args.no_readme)


if __name__ == "__main__":
    main()
