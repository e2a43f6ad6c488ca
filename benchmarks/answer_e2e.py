"""Answering end to end through the product over a large index: ``Retriever.answer_batch`` (issue 28).

fused_decode.py times generation alone; this times what a user calls. A random-weight AutoCompressor of
Llama-2-7B's shape (fused_decode.py's config) and a random-weight BERT of all-MiniLM-L6-v2's shape (6
layers, width 384) share a word-level tokenizer over 32,000 invented words, so nothing is downloaded and
every passage is exactly ``--passage-tokens`` tokens. The corpus, ``--passages`` files of random words, is
indexed by ``index_corpus`` (fp16 vectors in the store, flat FAISS; the compressor makes every summary
vector), then one ``Retriever`` answers batches of random questions, k = ``--k``, in fused and text mode:

* time to first token: the whole ``answer_batch`` call with one new token (embedding the questions, FAISS
  search, reading the chunks' vectors or text from the store, prefill, one token);
* tokens/s: ``batch × new tokens / call time`` with ``--new-tokens`` new tokens;

each the median of ``--repeats`` calls after a warm-up call, with the median of each of the Answer's
stage timings (and of a first-token call's time outside them), the slowest call's stages and the host's
garbage collections and CUDA allocation retries. The JSON at ``--out`` is rewritten after every row, so a
cut-short run keeps what it measured. ``--layers 2 --hidden 256 --passages 40`` runs the same code on a
CPU in seconds (a check, not a result).

    python benchmarks/answer_e2e.py --out benchmarks/results/answer_e2e-h200.json
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from fused_decode import calls, llama2_7b_config  # noqa: E402

from ragcompress.modeling.fast_decode import release_fast_decode  # noqa: E402
from ragcompress.modeling.step_compile import COMPILE_SETTINGS  # noqa: E402
from ragcompress.retrieval.generation import VECTOR_MODES  # noqa: E402
from ragcompress.retrieval.retriever import WARM_UP_BATCHES  # noqa: E402
from ragcompress_tools.random_models import save_random_embedder, word_level_tokenizer  # noqa: E402

VOCAB = 32000


def word_tokenizer():
    """A fast word-level tokenizer: ``<unk>``, ``<s>``, ``</s>`` and the words ``w3`` .. ``w31999``."""
    words = {"<unk>": 0, "<s>": 1, "</s>": 2} | {f"w{i}": i for i in range(3, VOCAB)}
    return word_level_tokenizer(
        words, "<unk>", unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<unk>"
    )


def save_embedder(path: Path, tokenizer, layers: int, hidden: int) -> Path:
    """A random BERT (``layers`` × ``hidden``, mean pooling) as a sentence-transformers folder."""
    heads = max(1, hidden // 32)
    return save_random_embedder(path, tokenizer, layers, hidden, heads, 4 * hidden, max_seq_length=256)


def words(rng: random.Random, n: int) -> str:
    return " ".join(f"w{rng.randrange(3, VOCAB)}" for _ in range(n))


def write_corpus(root: Path, passages: int, tokens: int) -> Path:
    """``passages`` files of ``tokens`` random words; a ``--work`` folder's earlier corpus of that many
    files is kept as it is (untouched files: the index over it is reused, not rebuilt)."""
    if root.is_dir() and len(list(root.glob("p*.txt"))) == passages:
        return root
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(passages):
        (root / f"p{i:05d}.txt").write_text(words(rng, tokens) + "\n")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--embedder-layers", type=int, default=6)
    parser.add_argument("--embedder-hidden", type=int, default=384)
    parser.add_argument("--passages", type=int, default=10000)
    parser.add_argument("--passage-tokens", type=int, default=512)
    parser.add_argument("--question-tokens", type=int, default=32)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--modes", default="fused,text")
    parser.add_argument(
        "--warm-up-batches",
        default=",".join(map(str, WARM_UP_BATCHES)),
        help="the batches a compiled Retriever answers before its rows (Retriever.warm_up's default: batch 1 "
        "and larger batches compile apart); 1 alone for --batches 1",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--index-batch", type=int, default=32, help="chunks compressed at once")
    parser.add_argument(
        "--compile-decode",
        default="off",
        help="rows for each of these Retriever compile_decode settings: off, static, dynamic (comma-separated)",
    )
    parser.add_argument(
        "--gpu-vectors",
        default="on",
        help="rows with the index's summary vectors held on the GPU (on: Retriever's default) and/or read "
        "from the host per answer (off), for each --compile-decode setting (comma-separated)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder for the corpus and index, kept (default: a temporary one, removed at the end)",
    )
    args = parser.parse_args()
    unknown = set(args.compile_decode.split(",")) - set(COMPILE_SETTINGS)
    if unknown:
        parser.error(f"--compile-decode: {sorted(unknown)} unknown; use {', '.join(COMPILE_SETTINGS)}")
    if not set(args.gpu_vectors.split(",")) <= {"on", "off"}:
        parser.error(f"--gpu-vectors: {args.gpu_vectors!r}; use on, off or on,off")
    if args.work is not None:
        run(args, args.work)
        return
    with tempfile.TemporaryDirectory(prefix="answer-e2e-") as work:  # the index is GBs: not left behind
        run(args, Path(work))


def run(args, work: Path) -> None:
    import transformers

    from indexing.pipeline import index_corpus
    from ragcompress.compressor import Compressor, CompressorInfo
    from ragcompress.embedder import Embedder
    from ragcompress.modeling import AutoCompressor

    started = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tokenizer = word_tokenizer()
    torch.manual_seed(0)
    with device:
        model = AutoCompressor.from_config(llama2_7b_config(args.layers, args.hidden), dtype=dtype).eval()
    identity = f"random Llama-2-7B shape ({args.layers} layers, width {args.hidden}), seed 0"
    compressor = Compressor(model, tokenizer)
    compressor.info = CompressorInfo(identity, "seed-0", compressor.summary_length, compressor.hidden_size)
    embedder = Embedder.load(
        save_embedder(work / "embedder", tokenizer, args.embedder_layers, args.embedder_hidden), device=device
    )
    corpus = write_corpus(work / "corpus", args.passages, args.passage_tokens)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "compressor": f"{identity}, {dtype}, SDPA, κ = {compressor.summary_length}",
        "embedder": f"random BERT ({args.embedder_layers} layers, width {args.embedder_hidden}), mean pooling",
        "passages": args.passages,
        "passage_tokens": args.passage_tokens,
        "question_tokens": args.question_tokens,
        "k": args.k,
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "command": "python benchmarks/answer_e2e.py " + " ".join(sys.argv[1:]),
        "rows": [],
    }

    def save(line=None) -> None:
        print(json.dumps(line if line is not None else result), flush=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1) + "\n")

    began = time.perf_counter()
    report = index_corpus(
        corpus,
        work / "index",
        model=compressor,
        embedder=embedder,
        chunk_tokens=args.passage_tokens,
        overlap=0,
        vector_dtype="fp16",
        faiss_kind="flat",
        batch_size=args.index_batch,
        progress=False,
    )
    seconds = time.perf_counter() - began
    result["index"] = {
        "chunks": report.stats.chunks,
        "seconds": seconds,
        "passages_per_second": args.passages / seconds,
        "disk_bytes": report.stats.disk_bytes,
        # True: nothing was compressed, the index of an earlier run in --work was up to date (the seconds
        # are that check's)
        "reused": report.chunks == 0,
    }
    save()
    rng = random.Random(1)
    batches = [int(b) for b in args.batches.split(",")]
    questions = [words(rng, args.question_tokens) for _ in range(max(batches))]
    first = True
    for setting in args.compile_decode.split(","):
        for vectors in args.gpu_vectors.split(","):
            run_setting(
                args, work, compressor, embedder, questions, batches, setting, vectors, first, result, save
            )
            first = False
    result["seconds"] = time.perf_counter() - started
    save({"seconds": result["seconds"]})


def retrieve_parts(retriever, questions: list[str], args) -> dict:
    """Where ``retrieve`` and ``fuse`` spend their time: each step they take, timed alone (median of 11
    after one untimed call; every step returns host data or ends in a copy the next step waits on)."""
    store = retriever.store

    def median_s(fn) -> float:
        return statistics.median(seconds for seconds, _ in calls(fn, retriever.device, 11))

    embeddings = retriever.embedder.encode(questions)
    hits = store.search_batch(embeddings, args.k)
    ids = sorted({h.chunk_id for row in hits for h in row})
    return {
        "batch": len(questions),
        "embed_s": median_s(lambda: retriever.embedder.encode(questions)),  # CUDA graphs on a GPU
        "embed_encode_s": median_s(lambda: retriever.embedder._encode(questions)),  # sentence-transformers
        "faiss_search_s": median_s(lambda: store.search_batch(embeddings, args.k)),  # FAISS, on the CPU
        # where Retriever searches: on the GPU for a GPU embedder (faiss_index.DeviceFlat without GPU FAISS)
        "search_s": median_s(lambda: store.search_batch(embeddings, args.k, retriever.search_device)),
        "chunk_rows_s": median_s(lambda: store.get_chunks(ids)),
        "search_batch_s": median_s(lambda: retriever.search_batch(questions, args.k)),
        "vectors_to_device_s": median_s(
            lambda: store.get_vectors(ids, dtype=retriever.dtype, device=retriever.device)
        ),
        "chunks": len(ids),
    }


class HostEvents:
    """What the host did during some calls besides answering: the garbage collector's passes (full
    ones apart, with their seconds) and CUDA allocations retried after freeing the allocator's cache
    (each a device synchronisation and fresh ``cudaMalloc`` calls)."""

    def __init__(self, device) -> None:
        self.device = device
        self.collections = self.full_collections = 0
        self.gc_s = 0.0
        self._began = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        self.collections += 1
        self.full_collections += info["generation"] == 2
        self.gc_s += time.perf_counter() - self._began

    def _retries(self) -> int:
        if self.device.type != "cuda":
            return 0
        return torch.cuda.memory_stats(self.device).get("num_alloc_retries", 0)

    def __enter__(self) -> HostEvents:
        self._retries_before = self._retries()
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._callback)
        self.alloc_retries = self._retries() - self._retries_before

    def as_dict(self) -> dict:
        return {
            "gc_collections": self.collections,
            "gc_full_collections": self.full_collections,
            "gc_s": round(self.gc_s, 4),
            "cuda_alloc_retries": self.alloc_retries,
        }


def run_setting(args, work, compressor, embedder, questions, batches, setting, vectors, first, result, save):
    """The rows of one ``Retriever``: compile_decode ``setting``, summary vectors held on the GPU or not."""
    from ragcompress import Retriever

    compiled = COMPILE_SETTINGS[setting]
    with Retriever(
        work / "index",
        model=compressor,
        embedder=embedder,
        compile_decode=compiled,
        gpu_vectors=vectors == "on",
    ) as retriever:
        began = time.perf_counter()
        held = retriever.store.preload_vectors()  # what warm_up does first; apart, so it is timed apart
        result.setdefault("vectors_preload", []).append(
            {"gpu_vectors": vectors, "bytes": held, "s": time.perf_counter() - began}
        )
        save(result["vectors_preload"][-1])
        began = time.perf_counter()
        if compiled:  # what `ragcompress serve --compile-decode` does before serving, a batch at a time
            # (so that a run cut short in its warm-up says how far it got)
            for batch in (int(b) for b in args.warm_up_batches.split(",")):
                seconds = retriever.warm_up(batches=(batch,))
                result.setdefault("warm_up_s", []).append(
                    {"compile_decode": setting, "batch": batch, "s": seconds}
                )
                save(result["warm_up_s"][-1])
        warm_up_s = time.perf_counter() - began
        if first:  # the first Retriever's: a cut-short run keeps them
            for batch in batches:
                result.setdefault("retrieve_parts", []).append(
                    retrieve_parts(retriever, questions[:batch], args)
                )
                save(result["retrieve_parts"][-1])
        held = vectors
        for mode in args.modes.split(","):
            if mode not in VECTOR_MODES and held == "on":
                # Text reads no summary vectors, and a text-only server would hold none: its rows run
                # without them (on an 80 GB GPU their 4 GB leave text's compiled batch 16 no room).
                retriever.store.release_vectors()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                held = "released"
            for batch in batches:
                row = measure(retriever, questions[:batch], mode, args, retriever.device)
                row.update(compile_decode=setting, gpu_vectors=held, warm_up_s=warm_up_s)
                result["rows"].append(row)
                save(row)
    # the next Retriever starts from a clean device: no static caches or graphs of this one's shapes
    release_fast_decode(compressor.model)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def stage_medians(runs: list[tuple[float, object]], pick) -> dict[str, float]:
    """Each stage's median over the calls (``pick``: one call's stages dict)."""
    stages = [pick(out) for _, out in runs]
    return {key: statistics.median(s.get(key, 0.0) for s in stages) for key in stages[0]}


def measure(retriever, questions: list[str], mode: str, args, device) -> dict:
    """One row: time to first token and tokens/s of ``answer_batch`` over ``questions``.

    Times and each stage's seconds are medians of ``--repeats`` calls; ``slowest_call_stages_s`` is the
    slowest 64-token call's stages, and ``host`` what the garbage collector and the CUDA allocator did
    during the timed calls, so one slow call shows where it went instead of passing for the rule."""
    batch = len(questions)

    def call(new_tokens):
        return lambda: retriever.answer_batch(
            questions, k=args.k, mode=mode, batch_size=batch, max_new_tokens=new_tokens
        )

    with HostEvents(device) as host:
        first = calls(call(1), device, args.repeats)
        full = calls(call(args.new_tokens), device, args.repeats)
    answers = full[-1][1]
    call_s = statistics.median(seconds for seconds, _ in full)
    return {
        "mode": mode,
        "batch": batch,
        "time_to_first_token_s": statistics.median(seconds for seconds, _ in first),
        "call_s": call_s,
        "tokens_per_second": batch * args.new_tokens / call_s,
        "calls_s": [round(seconds, 4) for seconds, _ in full],
        "stages_s": stage_medians(full, lambda out: out[0].timings),
        "first_token_stages_s": stage_medians(first, lambda out: out[0].timings),
        # the host's work between the stages (planning, tokenizing the prompt, padding, the output's text):
        # a first-token call's time outside retrieve, rerank, fuse, prefill and decode
        "first_token_outside_stages_s": statistics.median(
            seconds - sum(v for key, v in out[0].timings.items() if key != "total") for seconds, out in first
        ),
        "slowest_call_stages_s": dict(max(full, key=lambda run: run[0])[1][0].timings),
        "host": host.as_dict(),
        "prompt_tokens": answers[0].prompt_tokens,
        "softprompt_slots": answers[0].softprompt_slots,
        "chunks_found": len(answers[0].passages),
    }


if __name__ == "__main__":
    main()
