"""notebooks/02-what-summary-vectors-keep.ipynb: what the summary vectors keep."""

from __future__ import annotations

from notebook_cells.shared import ELAPSED, SETUP_QUIET

NB02 = [
    (
        "md",
        r"""
# What the summary vectors keep

A compressor turns a passage into κ = 50 **summary vectors**; the model later reads them back as a soft
prompt. This notebook measures, with the embedded default model (SmolLM2-135M + the shipped adapter),
how much of a passage survives:

1. perplexity of a passage's continuation with **no context**, with the context's **summary vectors**,
   and with the context **as text**, for several passages (bar chart);
2. how that changes with 1, 2 and 3 **accumulated segments** of context (line plot);
3. what the vectors look like: their **norms** and the **nearest vocabulary tokens** of each slot (heatmap);
4. what storing them as **fp16 / bf16 / int8 / fp8** costs in bytes and perplexity (table).

It uses `ragcompress.load_default` and `ragcompress.compress` only. Runs on a laptop CPU in a few
minutes (the last line prints the wall-clock and CPU time it took here). The texts are sections of
Python's reference manual as shipped with every Python (`pydoc_data.topics`); Python's documentation is
part of the adapter's training corpus (docs/training-data.md), so these are in-domain, possibly seen,
texts: held-out numbers are in docs/default-model.md.
""",
    ),
    ("code", SETUP_QUIET),
    (
        "code",
        r'''
import math

import torch
from pydoc_data.topics import topics

from ragcompress import compress, load_default

torch.manual_seed(0)
model, tokenizer = load_default(device="cpu", dtype=torch.float32)  # section 4 compares storage dtypes with fp32
KAPPA = model.config.summary_length
print(f"κ = {KAPPA} summary vectors per segment, width {model.config.hidden_size}, dtype {model.dtype}")


def tokens(text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def continuation_ppl(continuation: list[int], context: list[int] = (), softprompt=None) -> float:
    """Perplexity of continuation[1:] after the context tokens (as text) and/or a soft prompt.

    The first continuation token is not scored, so that all three conditions score the same tokens."""
    ids = list(context) + list(continuation)
    labels = [-100] * (len(context) + 1) + list(continuation[1:])
    soft = None if softprompt is None else softprompt[None].to(model.dtype)
    with torch.no_grad():
        out = model(torch.tensor([ids]), labels=torch.tensor([labels]), softprompt=soft)
    return math.exp(out.loss.item())
''',
    ),
    (
        "md",
        r"""
## 1. No context, summary vectors, text

For six sections of at least 256 tokens: the first **192 tokens** are the context, the next **64** the
continuation. The summary vectors come from one `compress` call over the six contexts.
""",
    ),
    (
        "code",
        r"""
CONTEXT, CONTINUATION = 192, 64
sections = {name: tokens(text) for name, text in sorted(topics.items())}
names = [n for n, ids in sections.items() if len(ids) >= CONTEXT + CONTINUATION and n.isalpha()][:6]
contexts = [sections[n][:CONTEXT] for n in names]
continuations = [sections[n][CONTEXT:CONTEXT + CONTINUATION] for n in names]
vectors = compress(model, contexts)  # token ids in, one [κ, width] tensor per context out
rows = []
for name, context, continuation, summary in zip(names, contexts, continuations, vectors):
    rows.append({
        "section": name,
        "none": continuation_ppl(continuation),
        "summary vectors": continuation_ppl(continuation, softprompt=summary),
        "text": continuation_ppl(continuation, context=context),
    })
ppl = pd.DataFrame(rows).set_index("section")
ppl["gain kept"] = (ppl["none"] - ppl["summary vectors"]) / (ppl["none"] - ppl["text"])
print(f"{KAPPA} vectors stand for {CONTEXT} context tokens; the text condition reads all {CONTEXT}")
ppl.round(2)
""",
    ),
    (
        "code",
        r"""
ax = ppl[["none", "summary vectors", "text"]].plot.bar(figsize=(9, 4), rot=0, color=["#bbb", "#d62", "#27a"])
ax.set_title(f"Perplexity of a {CONTINUATION}-token continuation, by what the model reads first")
ax.set_xlabel("reference-manual section")
ax.set_ylabel("perplexity (lower is better)")
plt.tight_layout()
plt.show()
means = ppl.mean()
print(f"mean PPL: none {means['none']:.2f}, summary vectors {means['summary vectors']:.2f}, text {means['text']:.2f};"
      f" gain kept {means['gain kept']:.0%} (mean of the per-section ratios)")
assert means["text"] < means["summary vectors"] < means["none"]  # vectors help, text helps more
""",
    ),
    (
        "md",
        r"""
The summary vectors lower the perplexity of what follows, and text lowers it further: the vectors keep
part of the context, not all of it. The *gain kept* column is the fraction of the text context's
improvement that the 50 vectors deliver; docs/default-model.md reports the same ratio for 512-token
segments on held-out text.

## 2. One, two, three accumulated segments

An AutoCompressor compresses a long context segment by segment, each step reading the summary vectors
of the steps before; the vectors of every step are kept (κ per segment). Here the continuation is fixed
(tokens 384–447 of each section) and the context grows backwards, 128 tokens per segment.
""",
    ),
    (
        "code",
        r"""
SEGMENT = 128
long_names = [n for n, ids in sections.items() if len(ids) >= 3 * SEGMENT + CONTINUATION and n.isalpha()][:3]
curve = []
for name in long_names:
    ids = sections[name]
    continuation = ids[3 * SEGMENT:3 * SEGMENT + CONTINUATION]
    alone = continuation_ppl(continuation)
    for n in (1, 2, 3):
        context = ids[(3 - n) * SEGMENT:3 * SEGMENT]
        summary = compress(model, [context], segment_length=SEGMENT)[0]
        assert summary.shape[0] == n * KAPPA  # one set of κ vectors per segment, accumulated
        curve.append({"section": name, "segments": n, "none": alone,
                      "summary vectors": continuation_ppl(continuation, softprompt=summary),
                      "text": continuation_ppl(continuation, context=context)})
curve = pd.DataFrame(curve)
by_segments = curve.groupby("segments")[["none", "summary vectors", "text"]].mean()
by_segments.round(2)
""",
    ),
    (
        "code",
        r"""
fig, ax = plt.subplots(figsize=(7, 4))
x = by_segments.index * SEGMENT
ax.plot(x, by_segments["none"], "--", color="#888", label="no context")
ax.plot(x, by_segments["summary vectors"], "o-", color="#d62", label=f"summary vectors ({KAPPA} per segment)")
ax.plot(x, by_segments["text"], "s-", color="#27a", label="context as text")
ax.set_xticks(x)
ax.set_title(f"Mean perplexity of the next {CONTINUATION} tokens over {len(long_names)} sections")
ax.set_xlabel("context length (tokens; 128 per compressed segment)")
ax.set_ylabel("perplexity (lower is better)")
ax.legend()
plt.tight_layout()
plt.show()
assert (by_segments["summary vectors"] < by_segments["none"]).all()
first, last = by_segments.iloc[0], by_segments.iloc[-1]
print(f"1 → 3 segments: summary vectors {first['summary vectors']:.2f} → {last['summary vectors']:.2f},"
      f" text {first['text']:.2f} → {last['text']:.2f}, none {first['none']:.2f}")
""",
    ),
    (
        "md",
        r"""
More context helps both, text much more: the nearest segment carries most of what the summary vectors
keep, and earlier segments, read through the vectors of the steps before, add a little. The printed
line has this run's numbers.

## 3. What the vectors look like

Each slot is a vector of the model's hidden width that the model reads where a token embedding would be.
Below: each slot's norm next to the typical norm of a token embedding, and the five vocabulary tokens
whose input embeddings are closest (cosine) to each slot of the first section's vectors.
""",
    ),
    (
        "code",
        r"""
import torch.nn.functional as F

summary = vectors[0].float()
embeddings = model.get_input_embeddings().weight.detach().float()
norms = summary.norm(dim=1)
token_norm = embeddings.norm(dim=1).median().item()
cosine = F.normalize(summary, dim=1) @ F.normalize(embeddings, dim=1).T
top = cosine.topk(5, dim=1)
labels = [[repr(tokenizer.decode([int(t)]))[1:-1] for t in row] for row in top.indices]  # \n, \t visible

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 13), gridspec_kw={"width_ratios": [1, 3]}, sharey=True)
left.barh(range(KAPPA), norms.numpy(), color="#d62")
left.axvline(token_norm, color="#27a", ls="--", label=f"median token embedding ({token_norm:.2f})")
left.set_title("L2 norm per slot")
left.set_xlabel("L2 norm (hidden units)")
left.set_ylabel("summary slot")
left.legend(loc="lower right", fontsize=8)
image = right.imshow(top.values.numpy(), aspect="auto", cmap="viridis")
for slot in range(KAPPA):
    for j in range(5):
        right.text(j, slot, labels[slot][j][:10], ha="center", va="center", fontsize=6, color="white")
right.set_xticks(range(5), [f"#{j + 1}" for j in range(5)])
right.set_title(f"Nearest vocabulary tokens per slot ('{names[0]}')")
right.set_xlabel("rank of the nearest token embedding")
fig.colorbar(image, ax=right, label="cosine similarity")
left.invert_yaxis()
plt.tight_layout()
plt.show()
print(f"slot norms {norms.min():.1f}–{norms.max():.1f} (median token embedding {token_norm:.2f});"
      f" best cosine to any token {top.values[:, 0].min():.2f}–{top.values[:, 0].max():.2f}")
assert norms.min() > 2 * token_norm and top.values[:, 0].max() < 0.5  # larger than tokens, none close
""",
    ),
    (
        "md",
        r"""
The vectors do not sit on the token embeddings: their norms are of a different scale and no slot is
close to any single token, so they are not a hidden "summary in words". They are read as activations the
model learnt to use.

## 4. Storage dtypes: bytes and perplexity

An index stores the vectors as fp16 (default), bf16, int8 or fp8 (e4m3); int8 and fp8 keep one float32
scale per vector (`--vector-dtype`, docs/store-format.md). The round trip below follows that scheme
(absmax / 127 for int8, absmax / 448 for fp8, per row) and scores the section-1 continuations again.
""",
    ),
    (
        "code",
        r"""
def round_trip(v: torch.Tensor, dtype: str) -> torch.Tensor:
    v = v.float()
    if dtype in ("fp16", "bf16"):
        return v.to(torch.float16 if dtype == "fp16" else torch.bfloat16).float()
    top = {"int8": 127.0, "fp8": 448.0}[dtype]
    scale = v.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / top
    if dtype == "int8":
        return (v / scale).round().clamp(-127, 127).to(torch.int8).float() * scale
    return (v / scale).to(torch.float8_e4m3fn).float() * scale


width = model.config.hidden_size
table = []
reference = ppl["summary vectors"].mean()
for dtype, element in (("fp16", 2), ("bf16", 2), ("int8", 1), ("fp8", 1)):
    scores = [continuation_ppl(c, softprompt=round_trip(v, dtype)) for c, v in zip(continuations, vectors)]
    stored = KAPPA * width * element + (KAPPA * 4 if dtype in ("int8", "fp8") else 0)
    table.append({"dtype": dtype, "bytes per passage": stored, "bytes per context token": stored / CONTEXT,
                  "mean PPL": sum(scores) / len(scores), "ΔPPL vs float32": sum(scores) / len(scores) - reference})
table = pd.DataFrame(table).set_index("dtype")
print(f"float32 vectors: mean PPL {reference:.3f}")
table.round(3)
""",
    ),
    (
        "code",
        r"""
assert table.loc["int8", "bytes per passage"] < 0.51 * table.loc["fp16", "bytes per passage"]
assert (table["ΔPPL vs float32"].abs() < 0.01 * reference).all()  # every storage dtype within 1 %
""",
    ),
    (
        "md",
        r"""
int8 and fp8 halve the bytes of fp16; on these passages neither moves the perplexity by more than a
small fraction of a percent (the table has this run's numbers), so quantization is not where the
summary vectors lose information: compression is. Notebook 04 shows the same choice on disk for a whole
index.
""",
    ),
    ("code", ELAPSED),
]
