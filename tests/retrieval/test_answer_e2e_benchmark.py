"""benchmarks/answer_e2e.py at a CPU-sized shape: the index it builds and the rows it writes (issue 28)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


SMALL = "--layers 2 --hidden 256 --embedder-layers 2 --embedder-hidden 64 --passages 24 --passage-tokens 48"


def run_benchmark(out: Path, work: Path, *options: str) -> dict:
    done = subprocess.run(
        [sys.executable, "benchmarks/answer_e2e.py", *SMALL.split(), "--k", "3", "--new-tokens", "3",
         "--repeats", "1", *options, "--work", str(work), "--out", str(out)],
        cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def test_the_end_to_end_benchmark_indexes_every_passage_and_times_each_mode_and_batch(tmp_path):
    work = tmp_path / "work"
    result = run_benchmark(tmp_path / "e2e.json", work, "--batches", "1,2", "--compile-decode", "off,dynamic")
    assert result["index"]["chunks"] == 24  # one chunk per passage: every passage is exactly 48 tokens
    assert result["index"]["reused"] is False
    # the compiled setting's warm-up, a batch at a time (a run cut short in it says how far it got)
    assert [(w["compile_decode"], w["batch"]) for w in result["warm_up_s"]] == [
        ("dynamic", 1),
        ("dynamic", 2),
    ]
    # one Retriever per setting: its fused rows, then its text rows, which run with no vectors held
    assert [(r["compile_decode"], r["mode"], r["batch"], r["gpu_vectors"]) for r in result["rows"]] == [
        (c, m, b, "on" if m == "fused" else "released")
        for c in ("off", "dynamic") for m in ("fused", "text") for b in (1, 2)
    ]  # fmt: skip
    assert [p["gpu_vectors"] for p in result["vectors_preload"]] == ["on", "on"]
    # each step of retrieval timed alone, per batch; 2 questions find at least the 3 chunks of one
    assert [p["batch"] for p in result["retrieve_parts"]] == [1, 2]
    for part in result["retrieve_parts"]:
        assert min(v for key, v in part.items() if key.endswith("_s")) > 0
        assert part["search_batch_s"] >= part["faiss_search_s"] and part["chunks"] >= 3
    for row in result["rows"]:
        assert row["chunks_found"] == 3 and row["time_to_first_token_s"] > 0 and row["tokens_per_second"] > 0
        # stages are medians over the calls, beside the slowest call's own and what the host did meanwhile
        assert len(row["calls_s"]) == 1 and row["calls_s"][0] == pytest.approx(row["call_s"], abs=1e-4)
        assert row["stages_s"]["retrieve"] > 0 and row["slowest_call_stages_s"]["retrieve"] > 0
        assert set(row["first_token_stages_s"]) == set(row["stages_s"])
        assert 0 < row["first_token_outside_stages_s"] < row["time_to_first_token_s"]
        assert set(row["host"]) == {"gc_collections", "gc_full_collections", "gc_s", "cuda_alloc_retries"}
        assert row["host"]["cuda_alloc_retries"] == 0 and row["host"]["gc_s"] >= 0
        # fused reads k × κ summary vectors and a short prompt; text reads the k passages' tokens
        if row["mode"] == "fused":
            assert row["softprompt_slots"] == 3 * 50 and row["prompt_tokens"] < 48
        else:
            assert row["softprompt_slots"] == 0 and row["prompt_tokens"] > 3 * 48
    assert result["seconds"] > 0

    # a second run on the same --work folder (the next device call on a warm machine) reuses the index
    files = sorted((p.name, p.stat().st_mtime_ns) for p in (work / "corpus").iterdir())
    again = run_benchmark(tmp_path / "again.json", work, "--batches", "1", "--modes", "fused")
    assert again["index"]["reused"] is True and again["index"]["chunks"] == 24
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (work / "corpus").iterdir()) == files
    assert again["index"]["seconds"] < result["index"]["seconds"] and len(again["rows"]) == 1
