"""What storing summary vectors as fp16 / bf16 / int8 / fp8 costs: bytes per text token and PPL (issue 5).

For held-out windows of 2 × 512 tokens (``data/corpus/*/test.jsonl`` when built by scripts/build_corpus.py,
else a fallback set of installed package documentation), the default compressor compresses the first
512-token segment into κ = 50 summary vectors; the vectors go through the store's ``quantize`` /
``dequantize`` in each dtype; then the model reads them as its soft prompt and we measure the perplexity
of the next 512 tokens (tokens 2..512, as in the paper's protocol). "fp32" is the unquantised reference
and "none" the same continuation without any summary vectors.

    python benchmarks/quantization.py            # writes results/quantization.json and a README section
"""

from __future__ import annotations

import argparse
import glob
import math
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import torch

from ragcompress.eval.ppl import document_windows
from ragcompress.loading import load_compressor
from ragcompress.modeling import compress
from ragcompress.store import bytes_per_text_token, bytes_per_vector, dequantize, quantize

sys.path.insert(0, str(Path(__file__).parent))
from readme_sections import background_jobs, cpu_name, save_result  # noqa: E402

HERE = Path(__file__).parent
DTYPES = ("fp16", "bf16", "int8", "fp8")


def fallback_texts(directory: Path, limit: int = 200) -> Path:
    """Long descriptions of installed packages (their README text) as .txt files: English prose and code."""
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata.get("Name", "")):
        body = dist.metadata.get_payload() if hasattr(dist.metadata, "get_payload") else None
        body = body or dist.metadata.get("Description") or ""
        if len(body) > 8000:
            (directory / f"{dist.metadata['Name']}.txt").write_text(body, encoding="utf-8")
            written += 1
        if written >= limit:
            break
    return directory


def held_out(tokenizer, segment: int, windows: int, per_source: int) -> tuple[torch.Tensor, list[str]]:
    paths = sorted(glob.glob("data/corpus/*/test.jsonl"))
    if not paths:
        paths = [str(fallback_texts(Path(tempfile.mkdtemp()) / "package-docs"))]
    array = torch.from_numpy(document_windows(paths, tokenizer, 2 * segment, windows, per_path=per_source))
    # Windows come grouped by source (and document); shuffle once so a batch, and so the "other window"
    # condition's neighbour, mixes sources.
    order = torch.randperm(len(array), generator=torch.Generator().manual_seed(0))
    return array[order], paths


@torch.inference_mode()
def measure(model, windows: torch.Tensor, segment: int, batch_size: int) -> dict[str, dict]:
    """NLL of each continuation per condition, and the KL divergence of each condition's next-token
    distribution from the fp32 one (what quantisation moves, whether or not the vectors help)."""
    conditions = ("fp32", "none", "other window", *DTYPES)
    sums = {c: {"nll": 0.0, "kl": 0.0, "tokens": 0} for c in conditions}
    errors = {d: [0.0, 0.0] for d in DTYPES}  # squared error, squared signal
    device = next(model.parameters()).device
    for first in range(0, len(windows), batch_size):
        batch = windows[first : first + batch_size].to(device)
        context, continuation = batch[:, :segment], batch[:, segment:]
        vectors = torch.stack(compress(model, context.tolist(), batch_size=len(batch))).float()
        reference = None
        for condition in conditions:
            if condition == "none":
                softprompt = None
            elif condition == "fp32":
                softprompt = vectors
            elif condition == "other window":
                # A scale for the KL column: how far the vectors of a *different* text move predictions.
                softprompt = vectors.roll(1, dims=0)
            else:
                # Exactly what a stored and re-read chunk goes through: per-vector quantisation.
                softprompt = torch.stack([dequantize(quantize(v, condition)) for v in vectors])
                errors[condition][0] += (softprompt - vectors).pow(2).sum().item()
                errors[condition][1] += vectors.pow(2).sum().item()
            logits = model(input_ids=continuation, softprompt=softprompt).logits[:, :-1].float()
            log_probs = torch.log_softmax(logits, dim=-1)  # tokens 2..S, each predicted inside the segment
            targets = continuation[:, 1:, None]
            sums[condition]["nll"] -= log_probs.gather(-1, targets).sum().item()
            sums[condition]["tokens"] += targets.numel()
            if reference is None:
                reference = log_probs
            else:
                sums[condition]["kl"] += (reference.exp() * (reference - log_probs)).sum().item()
        print(f"{first + len(batch)}/{len(windows)} windows", file=sys.stderr, flush=True)
    result = {}
    for condition, total in sums.items():
        nll = total["nll"] / total["tokens"]
        row = {"nll": nll, "ppl": math.exp(nll), "kl_from_fp32": total["kl"] / total["tokens"]}
        row["tokens"] = total["tokens"]
        if condition in errors:
            row["relative_rms_error"] = math.sqrt(errors[condition][0] / errors[condition][1])
        result[condition] = row
    return result


def markdown(result: dict) -> str:
    rows = result["conditions"]
    kappa, hidden, segment = result["summary_length"], result["hidden_size"], result["segment_tokens"]
    lines = [
        "## Quantised summary vectors: storage and PPL (issue 5)",
        "",
        f"{result['windows']} held-out windows ({', '.join(result['data'])}); the default compressor "
        f"({result['compressor']}) compresses the first {segment} tokens into κ = {kappa} vectors, which go "
        "through the store's `quantize`/`dequantize`; PPL of the next "
        f"{segment} tokens read with those vectors as soft prompt. Bytes per text token: one {segment}-token "
        f"chunk's κ = {kappa} vectors of width {hidden} (values + per-vector fp32 scales).",
        "",
        "| vectors | bytes / vector | bytes / text token | PPL | Δ PPL vs fp32 | KL from fp32 (nats/token) "
        "| rel. RMS error |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    reference = rows["fp32"]["ppl"]
    for name in ("fp32", *DTYPES, "other window", "none"):
        row = rows[name]
        size = result["bytes"].get(name)
        per_vector = f"{size['per_vector']:,}" if size else "–"
        per_token = f"{size['per_text_token']:.1f}" if size else "–"
        delta = f"{row['ppl'] - reference:+.4f}" if name != "fp32" else "–"
        kl = f"{row['kl_from_fp32']:.2e}" if name != "fp32" else "–"
        error = f"{row['relative_rms_error']:.2e}" if "relative_rms_error" in row else "–"
        lines.append(f"| {name} | {per_vector} | {per_token} | {row['ppl']:.4f} | {delta} | {kl} | {error} |")
    worst = max(DTYPES, key=lambda d: rows[d]["kl_from_fp32"])
    lines += [
        "",
        f'"other window" reads another window\'s vectors and "none" reads no vectors at all: they show how '
        f"far the vectors' content moves predictions ({rows['other window']['kl_from_fp32']:.2e} and "
        f"{rows['none']['kl_from_fp32']:.2e} nats/token). The largest quantisation shift, {worst}, is "
        f"{rows[worst]['kl_from_fp32']:.2e} nats/token, "
        f"{rows[worst]['kl_from_fp32'] / rows['other window']['kl_from_fp32']:.3%} of the other-window "
        "shift. On this held-out text the shipped compressor's fp32 vectors take PPL from "
        f"{rows['none']['ppl']:.4f} (none) to {reference:.4f}"
        + (
            f" ({reference - rows['none']['ppl']:+.4f}), and no stored dtype moves it by more than "
            f"{max(abs(rows[d]['ppl'] - reference) for d in DTYPES):.4f}; "
            if reference < rows["none"]["ppl"]
            else ": they do not help here, so PPL cannot show what quantisation costs; "
        )
        + "the KL column measures the quantisation error itself.",
    ]
    lines += [
        "",
        f"Device: {result['device']}; {result['seconds']:.0f} s. {result['note']}",
        "",
        f"Command: `{result['command']}` (result: `results/quantization.json`, {result['date']}).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--per-source", type=int, default=4, help="windows per data file, at most")
    parser.add_argument("--segment", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--model", default=None, help="compressor spec (default: the embedded default)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "quantization.json")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    busy = background_jobs()
    model, tokenizer, info = load_compressor(args.model, device=args.device)
    windows, data = held_out(tokenizer, args.segment, args.windows, args.per_source)
    conditions = measure(model, windows, args.segment, args.batch_size)
    device = next(model.parameters()).device
    sizes = {"fp32": {"per_vector": info.hidden_size * 4}}
    sizes.update({d: {"per_vector": bytes_per_vector(info.hidden_size, d)} for d in DTYPES})
    for size in sizes.values():
        size["per_text_token"] = info.summary_length * size["per_vector"] / args.segment
    assert math.isclose(
        sizes["int8"]["per_text_token"],
        bytes_per_text_token(info.summary_length, args.segment, info.hidden_size, "int8"),
    )
    result = {
        "compressor": info.id,
        "weights_hash": info.weights_hash,
        "summary_length": info.summary_length,
        "hidden_size": info.hidden_size,
        "segment_tokens": args.segment,
        "windows": len(windows),
        "data": data,
        "conditions": conditions,
        "bytes": sizes,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch": torch.__version__,
        "seconds": time.perf_counter() - started,
        "note": (
            f"Another CPU job was running at the same time ({len(busy)} process(es)), which affects only the time."
            if busy
            else ""
        ),
        "command": "python " + " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
    }
    save_result(result, args.out, "quantization", markdown(result), readme=not args.no_readme)


if __name__ == "__main__":
    main()
