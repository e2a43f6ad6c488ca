"""Flat (and IVF) search: FAISS on the CPU against the store's search on the caller's GPU (issue 28).

``VectorIndex.search(..., device=...)`` searches on a GPU caller's device: a flat index as one matrix
product and a top-k in torch over a copy of its vectors (``faiss_index.DeviceFlat``), a trained IVF index
through GPU FAISS when the installed faiss has GPUs; each row names the route taken (``search_route``:
an IVF index without GPU FAISS stays on the CPU). For random unit embeddings
(all-MiniLM-L6-v2's 384 dimensions by default), each index kind (``--kinds``), size and query batch it
measures

* FAISS's search of the same index on the CPU (what every search ran before), median seconds;
* the device search, median seconds, from host queries to host ids and scores, as a ``Retriever`` calls it;
* the share of queries whose top-k ids the two return identically, and the largest score difference;
* the seconds to build the device copy (paid once per commit the process reads);
* for a flat index where GPU FAISS is installed, GPU FAISS's median on the same queries too
  (``gpu_faiss_s``): the route the product does not take for flat indexes, compared in the same run.

``--gpu-temp-mib`` sets GPU FAISS's scratch memory (the product caps it at 256 MiB).

Without a GPU, ``--device cpu`` times the torch path on the CPU (a check of the code, not the product's
path: CPU callers keep FAISS). Rows are written to ``--out`` as they finish.

    python benchmarks/flat_search.py --out benchmarks/results/flat_search-h100.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fused_decode import calls  # noqa: E402
from readme_sections import cpu_name  # noqa: E402

from ragcompress.store import faiss_index  # noqa: E402
from ragcompress.store.faiss_index import VectorIndex, normalise  # noqa: E402
from ragcompress.store.manifest import FaissInfo  # noqa: E402


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return normalise(rng.standard_normal((n, dim), dtype=np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="index sizes (comma-separated)")
    parser.add_argument("--batches", default="1,16,64", help="queries per search (comma-separated)")
    parser.add_argument("--kinds", default="flat", help="index kinds: flat and/or ivf, comma-separated")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch and FAISS CPU threads (0: as found)")
    parser.add_argument("--gpu-temp-mib", type=int, help="GPU FAISS's scratch memory (default: the product's)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.gpu_temp_mib:
        faiss_index.GPU_FAISS_TEMP_BYTES = args.gpu_temp_mib << 20
    device = torch.device(args.device)
    if device.type == "cpu":  # the product searches on the device only for GPU callers
        faiss_index.DEVICE_SEARCH_TYPES = (*faiss_index.DEVICE_SEARCH_TYPES, "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
        faiss_index.faiss.omp_set_num_threads(args.threads)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU: {cpu_name()}",
        "host_cpu": cpu_name(),  # where FAISS searches
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "faiss": faiss_index.faiss.__version__,
        "faiss_gpus": faiss_index.faiss.get_num_gpus() if hasattr(faiss_index.faiss, "get_num_gpus") else 0,
        "gpu_faiss_temp_mib": faiss_index.GPU_FAISS_TEMP_BYTES >> 20,
        "dim": args.dim,
        "k": args.k,
        "repeats": args.repeats,
        "command": "python benchmarks/flat_search.py " + " ".join(sys.argv[1:]),
        "rows": [],
    }
    rng = np.random.default_rng(0)
    for kind, size in itertools.product(args.kinds.split(","), (int(s) for s in args.sizes.split(","))):
        began = time.perf_counter()
        index = VectorIndex.build(
            FaissInfo(kind=kind), args.dim, np.arange(size, dtype=np.int64), unit_rows(rng, size, args.dim)
        )
        build_s = time.perf_counter() - began
        began = time.perf_counter()
        index.search(unit_rows(rng, 1, args.dim), args.k, device)  # makes the device copy
        copy_s = time.perf_counter() - began
        for batch in (int(b) for b in args.batches.split(",")):
            row = {
                "kind": kind,
                "size": size,
                "batch": batch,
                "route": index.search_route(device, args.k),
                **compare(index, unit_rows(rng, batch, args.dim), device, args),
                "build_s": build_s,
            }
            result["rows"].append({**row, "device_copy_s": copy_s})
            print(json.dumps(result["rows"][-1]), flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(result, indent=1) + "\n")


def compare(index: VectorIndex, queries: np.ndarray, device: torch.device, args) -> dict:
    """FAISS on the CPU and the device search on ``queries``: medians, their ratio, and agreement."""
    on_cpu = calls(lambda: index.search(queries, args.k), device, args.repeats)
    on_device = calls(lambda: index.search(queries, args.k, device), device, args.repeats)
    (cpu_scores, cpu_ids), (dev_scores, dev_ids) = on_cpu[-1][1], on_device[-1][1]
    cpu_s = statistics.median(s for s, _ in on_cpu)
    device_s = statistics.median(s for s, _ in on_device)
    row = {
        "faiss_cpu_s": cpu_s,
        "device_s": device_s,
        "faiss_cpu_over_device": cpu_s / device_s,
        "same_ids": float(np.mean(np.all(cpu_ids == dev_ids, axis=1))),
        "max_score_difference": float(np.abs(cpu_scores - dev_scores).max()),
    }
    # the route a flat index does not take: GPU FAISS's copy of it (as IVF gets it) on the same GPU
    copy = index._gpu_faiss(device) if index.search_route(device, args.k) == "torch" else None
    if copy is not None:
        on_faiss = calls(lambda: copy.search(queries, args.k), device, args.repeats)
        row["gpu_faiss_s"] = statistics.median(s for s, _ in on_faiss)
        row["gpu_faiss_same_ids"] = float(np.mean(np.all(cpu_ids == on_faiss[-1][1][1], axis=1)))
    return row


if __name__ == "__main__":
    main()
