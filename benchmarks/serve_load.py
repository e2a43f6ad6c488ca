"""Load test of `ragcompress serve`: a bounded burst of questions from concurrent clients, batched and not.

An index of the first ``--documents`` synthetic test documents is built with every default (or
``--index`` names one). For each ``--max-batch`` value a real `ragcompress serve` process is started on
127.0.0.1 (a free port), warmed up with one question, and sent ``--requests`` questions (the documents'
own questions, cycled) by ``--concurrency`` clients at once, each sending its next question when its
previous answer arrives. Every request is checked (status 200, the answer is for the question asked), so
"lost" counts anything else. Reported: requests/s, latency percentiles, and how many ``answer_batch``
calls the server made. All traffic stays on the loopback interface; the run is bounded in count and time.

    python benchmarks/serve_load.py --out benchmarks/results/serve_load-cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from readme_sections import cpu_name, save_result  # noqa: E402

HERE = Path(__file__).parent


def build_index(root: Path, documents: int) -> tuple[Path, list[str]]:
    """The first ``documents`` synthetic test documents, indexed with the defaults; their questions."""
    from indexing.pipeline import index_corpus
    from ragcompress_tools.synthqa import generate

    data = generate("test", 300, seed=0)
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    kept = dict(data.documents[:documents])
    for doc_id, text in kept.items():
        (corpus / f"{doc_id}.txt").write_text(text, encoding="utf-8")
    index_corpus(corpus, root / "index", progress=False)
    return root / "index", [q["question"] for q in data.questions if q["doc_ids"][0] in kept]


def start_server(index: Path, max_batch: int, window_ms: float, threads: int | None):
    command = [sys.executable, "-m", "ragcompress", "serve", "--index", str(index), "--port", "0"]
    command += ["--max-batch", str(max_batch), "--batch-window-ms", str(window_ms), "--device", "cpu"]
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    line = lines.get(timeout=600)
    if " on http://" not in line:
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, line.split(" on ")[1].split()[0]


async def load(url: str, questions: list[str], body: dict, concurrency: int, deadline: float) -> dict:
    """Send every question once, ``concurrency`` at a time; latencies and what went wrong."""
    pending = list(enumerate(questions))
    latencies: list[float] = []
    failures: list[str] = []

    async def client(http: httpx.AsyncClient) -> None:
        while pending and time.monotonic() < deadline:
            _, question = pending.pop(0)
            started = time.perf_counter()
            try:
                response = await http.post("/answer", json={"question": question, **body})
                answer = response.json()
                ok = response.status_code == 200 and answer.get("query") == question and answer.get("text")
                if not ok:
                    failures.append(f"{response.status_code}: {str(answer)[:200]}")
            except httpx.HTTPError as error:
                failures.append(repr(error))
            else:
                latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"wall": wall, "latencies": latencies, "failures": failures, "unsent": len(pending)}


def run_one(index: Path, questions: list[str], args, max_batch: int, requests: int) -> dict:
    process, url = start_server(index, max_batch, args.window_ms, args.threads)
    body = {"k": args.k, "mode": args.mode, "max_new_tokens": args.max_new_tokens}
    try:
        httpx.post(f"{url}/answer", json={"question": questions[0], **body}, timeout=600).raise_for_status()
        before = httpx.get(f"{url}/info", timeout=60).json()["server"]
        asked = [questions[i % len(questions)] for i in range(requests)]
        deadline = time.monotonic() + args.max_seconds
        outcome = asyncio.run(load(url, asked, body, args.concurrency, deadline))
        after = httpx.get(f"{url}/info", timeout=60).json()["server"]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    latencies = sorted(outcome["latencies"])
    answered = len(latencies)
    batches = after["batches"] - before["batches"]
    return {
        "max_batch": max_batch,
        "requests": requests,
        "answered": answered,
        "lost": requests - answered,
        "failures": outcome["failures"][:5],
        "seconds": outcome["wall"],
        "requests_per_second": answered / outcome["wall"],
        "latency_p50_s": statistics.median(latencies) if latencies else None,
        "latency_p95_s": latencies[int(0.95 * (answered - 1))] if latencies else None,
        "answer_batch_calls": batches,
        "mean_batch": (after["batched_questions"] - before["batched_questions"]) / max(batches, 1),
    }


def markdown(result: dict) -> str:
    rows = "\n".join(
        f"| {r['max_batch']} | {r['answered']} / {r['requests']} | {r['lost']} | {r['seconds']:.1f} | "
        f"{r['requests_per_second']:.2f} | {r['latency_p50_s']:.2f} | {r['latency_p95_s']:.2f} | "
        f"{r['answer_batch_calls']} | {r['mean_batch']:.1f} |"
        for r in result["runs"]
    )
    single = [r for r in result["runs"] if r["max_batch"] == 1 and r["answered"]]
    ratios = " ".join(
        f"`--max-batch {r['max_batch']}` served {r['requests_per_second'] / single[0]['requests_per_second']:.2f} × "
        f"the requests per second of one at a time, {r['mean_batch']:.1f} questions a batch on average."
        for r in result["runs"]
        if single and r["max_batch"] != 1
    )
    lost = sum(r["lost"] for r in result["runs"])
    ratios += " Every request was answered." if not lost else f" {lost} requests were lost."
    return f"""## Serving: `ragcompress serve` under concurrent load (issue 30)

Questions to `POST /answer` from {result["concurrency"]} concurrent clients on 127.0.0.1
(each sends its next question when its answer arrives), against a `ragcompress serve` process over an index
of {result["documents"]} synthetic test documents built with the defaults (default compressor, all-MiniLM-L6-v2,
fp16); mode {result["mode"]}, k = {result["k"]}, at most {result["max_new_tokens"]} new tokens, greedy.
`--max-batch 1` answers one question at a time; `--max-batch 8` lets questions that arrive within
{result["window_ms"]:g} ms share one `answer_batch` call. "Lost" counts any request without a 200 answer to
the question it asked.

| max batch | answered | lost | s | requests/s | p50 latency s | p95 latency s | answer_batch calls | mean batch |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

Device: {result["device"]}; torch {result["torch"]}, {result["threads"] or "default"} torch thread(s) in the server.
{result["load_note"]}
{ratios.strip()} The test suite checks that served answers equal `Retriever.answer` (tests/serve/).

Command: `{result["command"]}` (result: `results/{result["out_name"]}`, {result["date"]}).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=None, help="serve this index instead of building one")
    parser.add_argument("--documents", type=int, default=24)
    parser.add_argument("--requests", type=int, nargs="+", default=[200], help="per --max-batch value")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--window-ms", type=float, default=20.0)
    parser.add_argument(
        "--threads", type=int, default=None, help="the server's torch threads (OMP_NUM_THREADS)"
    )
    parser.add_argument("--mode", default="fused")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=900, help="stop sending after this long")
    parser.add_argument("--load-note", default="", help="what else ran on the machine meanwhile")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "serve_load-cpu.json")
    parser.add_argument("--no-readme", action="store_true", help="do not update benchmarks/README.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        if args.index is None:
            started = time.perf_counter()
            index, questions = build_index(Path(tmp), args.documents)
            print(f"indexed {args.documents} documents in {time.perf_counter() - started:.0f} s", flush=True)
        else:
            from ragcompress_tools.synthqa import generate

            index, questions = args.index, [q["question"] for q in generate("test", 300, seed=0).questions]
        runs = []
        counts = args.requests * len(args.max_batch) if len(args.requests) == 1 else args.requests
        for max_batch, requests in zip(args.max_batch, counts):
            runs.append(run_one(index, questions, args, max_batch, requests))
            print(runs[-1], flush=True)
    with open("/proc/loadavg") as handle:
        load_average = handle.read().split()[:3]
    result = {
        "device": f"CPU: {cpu_name()} (this repository's shared CI/dev machine)",
        "torch": torch.__version__,
        "documents": args.documents,
        "concurrency": args.concurrency,
        "window_ms": args.window_ms,
        "threads": args.threads,
        "mode": args.mode,
        "k": args.k,
        "max_new_tokens": args.max_new_tokens,
        "runs": runs,
        "load_average_after": load_average,
        "load_note": f"{args.load_note} Load average (1/5/15 min) after the run: {', '.join(load_average)}.".strip(),
        "command": "python benchmarks/serve_load.py " + shlex.join(sys.argv[1:]),
        "out_name": args.out.name,
        "date": date.today().isoformat(),
    }
    save_result(result, args.out, "serve-load", markdown(result), readme=not args.no_readme)


if __name__ == "__main__":
    main()
