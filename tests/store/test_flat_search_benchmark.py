"""benchmarks/flat_search.py at a CPU size: both searches agree and every row is written (issue 28)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_flat_search_benchmark_compares_faiss_and_the_device_search(tmp_path):
    out = tmp_path / "flat.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/flat_search.py", "--sizes", "500,3000", "--batches", "1,5", "--dim", "32",
         "--repeats", "2", "--device", "cpu", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert [(r["size"], r["batch"]) for r in result["rows"]] == [(500, 1), (500, 5), (3000, 1), (3000, 5)]
    for row in result["rows"]:
        assert row["same_ids"] == 1.0 and row["max_score_difference"] < 1e-5
        assert row["faiss_cpu_s"] > 0 and row["device_s"] > 0 and row["device_copy_s"] > 0
    assert result["dim"] == 32 and result["command"].startswith("python benchmarks/flat_search.py")
