"""Write notebooks/02-*.ipynb … 04-*.ipynb from the cell texts below, and optionally execute them.

    python scripts/make_notebooks.py            # write the notebooks (no outputs)
    python scripts/make_notebooks.py --execute  # write, run top to bottom with nbclient, store outputs
    python scripts/make_notebooks.py --execute --only 03

The notebooks are data, kept here as plain strings so that a change reads as a diff; the file is long
because it holds three notebooks' text, not because it holds logic. Only the public API is used in them:
``ragcompress`` top-level names, ``Retriever`` and the ``ragcompress`` command line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"

# ---- shared cells -------------------------------------------------------------------------------------
SETUP = r'''
import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never reach for a model hub
warnings.filterwarnings("ignore", message="IProgress not found")  # keep the outputs readable
import transformers

transformers.logging.disable_progress_bar()
import json, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
WORK = Path(tempfile.mkdtemp(prefix="ragcompress-nb-"))
STARTED = time.perf_counter()


def ragcompress(*args: str) -> str:
    """Run the `ragcompress` command line (as `python -m ragcompress`): its stdout, or an error."""
    run = subprocess.run([sys.executable, "-m", "ragcompress", *args], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"ragcompress {' '.join(args)} failed ({run.returncode}): {run.stderr[-2000:]}")
    return re.sub(r"\x1b\[[0-9;]*m", "", run.stdout)  # no terminal colours in stored outputs
'''

# 02 scores with labels, which makes transformers warn once about the config's loss_type: silence it there
SETUP_QUIET = SETUP.replace(
    "disable_progress_bar()\n", "disable_progress_bar()\ntransformers.logging.set_verbosity_error()\n", 1
)

ELAPSED = r"""
import resource

children = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = time.process_time() + children.ru_utime + children.ru_stime  # this kernel + the commands it ran
print(f"this notebook ran in {time.perf_counter() - STARTED:.0f} s wall-clock, {cpu:.0f} s of CPU time")
shutil.rmtree(WORK, ignore_errors=True)
"""

# ---- 02: what the summary vectors keep -----------------------------------------------------------------
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
model, tokenizer = load_default(device="cpu")
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

# ---- 03: fused vs text vs REPLUG on your own folder ----------------------------------------------------
NB03 = [
    (
        "md",
        r"""
# Fused vs text vs REPLUG on your own folder

Index a folder of your documents with `ragcompress index`, then ask the same questions in every answer
mode of `Retriever` and compare what comes back, where it comes from, how long it takes and how many
prompt positions it costs:

| mode | what the model reads before the question |
|---|---|
| `none` | nothing (the model alone) |
| `text` | the k passages as plain text |
| `replug` | one pass per passage (as text), next-token distributions mixed by retrieval score |
| `fused` | the k passages' stored summary vectors (κ = 50 each), least → most relevant, as one soft prompt |
| `fused` + `extractive=True` | the same soft prompt, answer restricted to a span of the passages' text |

The folder here is a copy of the bundled demo corpus (`examples/demo/corpus`, 12 short documents about
fictional companies, people and places) and its questions (`examples/demo/questions.jsonl`); point
`FOLDER` at your own documents to run it on them. Takes about five minutes on a laptop CPU (the last
line prints the wall-clock and CPU time it took here).
""",
    ),
    ("code", SETUP),
    (
        "code",
        r"""
FOLDER = WORK / "my-folder"
shutil.copytree(ROOT / "examples" / "demo" / "corpus", FOLDER)
INDEX = WORK / "my-index"
print(ragcompress("index", str(FOLDER), "--index", str(INDEX), "--no-progress"))
stats = json.loads(ragcompress("info", str(INDEX), "--json"))
assert stats["documents"] == 12 and stats["chunks"] == 12
""",
    ),
    (
        "code",
        r'''
from ragcompress import Retriever

retriever = Retriever(INDEX)  # loads the models the index names (here the embedded defaults)
questions = [json.loads(line) for line in (ROOT / "examples" / "demo" / "questions.jsonl").open()]
MODES = ["none", "text", "replug", "fused", "fused + extractive"]
K, MAX_NEW_TOKENS = 3, 12


def ask(queries: list[str], mode: str, batch_size: int = 1):
    """Answers in one of MODES ("fused + extractive" is fused mode with extractive=True)."""
    base, _, option = mode.partition(" + ")
    options = {"extractive": True} if option == "extractive" else {}
    return retriever.answer_batch(queries, k=K, mode=base, max_new_tokens=MAX_NEW_TOKENS,
                                  batch_size=batch_size, **options)
''',
    ),
    (
        "md",
        r"""
## Every mode on the bundled questions

The first question about each of the 12 documents, answered in each mode in batches of 12. Exact match
is after the usual normalisation (lower case, no punctuation or articles, first line of the answer),
against any of the accepted answers. Twelve questions are a demonstration, not an evaluation:
`ragcompress eval qa` runs the 606-question test set (docs/retrieval.md, docs/default-model.md).
""",
    ),
    (
        "code",
        r"""
import string


def normalise(text: str) -> str:
    text = text.strip().split("\n")[0].lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def exact(answer: str, accepted: list[str]) -> bool:
    return normalise(answer) in {normalise(a) for a in accepted}


questions = [q for q in questions if q["id"].endswith("-q0")]  # one question per document
results, em = {}, {}
for mode in MODES:
    started = time.perf_counter()
    results[mode] = ask([q["question"] for q in questions], mode, batch_size=len(questions))
    seconds = time.perf_counter() - started
    em[mode] = {"EM": sum(exact(a.text, q["answers"]) for a, q in zip(results[mode], questions)) / len(questions),
                "s / question": seconds / len(questions),
                "prompt tokens": sum(a.prompt_tokens for a in results[mode]) / len(questions),
                "soft-prompt slots": sum(a.softprompt_slots for a in results[mode]) / len(questions)}
em = pd.DataFrame(em).T
print(f"{len(questions)} questions, k = {K}, greedy, at most {MAX_NEW_TOKENS} new tokens")
em.round(3)
""",
    ),
    (
        "md",
        r"""
Answers side by side, with the document the best passage came from:
""",
    ),
    (
        "code",
        r"""
side = pd.DataFrame({
    "question": [q["question"][:40] for q in questions],
    "expected": [q["answers"][0] for q in questions],
    **{mode: [a.text.strip().split("\n")[0][:24] for a in results[mode]] for mode in MODES},
    "best source": [a.sources[0] for a in results["fused"]],
})
found = sum(s == q["doc_ids"][0] for s, q in zip(side["best source"], questions))
print(f"the best passage is from the question's document for {found} of {len(questions)} questions")
assert found >= len(questions) - 1
side
""",
    ),
    (
        "code",
        r"""
assert em.loc["text", "EM"] > em.loc["none", "EM"] and em.loc["fused", "EM"] > em.loc["none", "EM"]
assert em.loc["fused + extractive", "EM"] >= em.loc["fused", "EM"]
assert (em.loc[["fused", "fused + extractive"], "soft-prompt slots"] == K * 50).all()
assert em.loc["fused", "prompt tokens"] == em.loc["none", "prompt tokens"]  # the question only
""",
    ),
    (
        "md",
        r"""
## What each mode costs

Left: prompt positions per question. `fused` reads k·κ = 150 summary slots plus the question's tokens,
whatever the passages' length; `text` reads every passage token; `replug` reads each passage in its own
pass (the count is summed over passes). Right: seconds per question, answered in one batch on this
machine's CPU (retrieval, fetching vectors, prefill and decoding).
""",
    ),
    (
        "code",
        r"""
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
em[["prompt tokens", "soft-prompt slots"]].plot.barh(stacked=True, ax=left, color=["#27a", "#d62"])
left.set_title(f"Prompt positions per question (k = {K})")
left.set_xlabel("positions (text tokens + summary slots)")
left.invert_yaxis()
em["s / question"].plot.barh(ax=right, color="#555")
right.set_title("Latency per question, one batch of 12 (CPU)")
right.set_xlabel("seconds per question")
right.invert_yaxis()
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
One question at a time, where the time goes (the `timings` of each `Answer`, seconds): `retrieve`
embeds the question and searches, `fuse` reads and concatenates the stored vectors, `prefill` is the
forward pass over the prompt, `decode` every later step.
""",
    ),
    (
        "code",
        r"""
stages = {}
for mode in MODES:
    answer = ask([questions[0]["question"]], mode, batch_size=1)[0]
    stages[mode] = {k: v for k, v in answer.timings.items() if k != "total"}
stages = pd.DataFrame(stages).T
ax = stages.plot.barh(stacked=True, figsize=(9, 3.5))
ax.set_title(f"Where one answer's time goes (k = {K}, CPU)")
ax.set_xlabel("seconds")
ax.invert_yaxis()
plt.tight_layout()
plt.show()
stages.round(3)
""",
    ),
    (
        "md",
        r"""
`extractive=True` keeps the fused prompt (no passage text is read) but only lets the answer be a span of
the retrieved passages' text, which the index stores beside the vectors: the blurred names of plain
fused answers become names that are in the passages. It suits factoid questions; docs/retrieval.md says
when not to use it. The questions where it changes the outcome here:
""",
    ),
    (
        "code",
        r"""
changed = pd.DataFrame([
    {"question": q["question"], "expected": q["answers"][0], "fused": results["fused"][i].text.strip()[:24],
     "fused + extractive": results["fused + extractive"][i].text.strip()[:24]}
    for i, q in enumerate(questions)
    if exact(results["fused"][i].text, q["answers"]) != exact(results["fused + extractive"][i].text, q["answers"])
])
print(f"extractive changes the exact-match outcome of {len(changed)} of {len(questions)} questions")
changed
""",
    ),
    (
        "code",
        r"""
retriever.close()
""",
    ),
    ("code", ELAPSED),
]

# ---- 04: compress your own corpus at scale --------------------------------------------------------------
NB04 = [
    (
        "md",
        r"""
# Compress your own corpus, at scale

What running `ragcompress index` on a real, changing corpus looks like:

1. **incremental indexing**: add, change and delete files, re-run, read what the index reports;
2. `ragcompress info --json` read into **pandas**;
3. **fp16 vs int8** vectors on disk, the int8 index built by the **Ray engine** on a local cluster (when
   `ray` is installed: `pip install "ragcompress[ray]"`; otherwise by the local engine);
4. a **FAISS IVF** index over a larger corpus of a few hundred chunks.

Everything goes through the command line (`python -m ragcompress`, the same as the `ragcompress` console
script), plus `Retriever` for searching. Takes about five to ten minutes on a laptop CPU: every `index`
run starts a process and loads the models (the last line prints the time it took here).
""",
    ),
    ("code", SETUP),
    (
        "code",
        r'''
def reported(output: str, row: str) -> int:
    """The 'this run' number of one row of the table that `ragcompress index` prints."""
    match = re.search(rf"{row}\s*│\s*([\d,]+)", output)
    if match is None:
        raise ValueError(f"no row {row!r} in the index report")
    return int(match.group(1).replace(",", ""))


ROWS = ("documents added", "documents changed", "documents removed", "documents unchanged", "chunks")
FOLDER = WORK / "corpus"
shutil.copytree(ROOT / "examples" / "demo" / "corpus", FOLDER)
INDEX = WORK / "index-fp16"
first = ragcompress("index", str(FOLDER), "--index", str(INDEX), "--no-progress")
print(first)
assert [reported(first, r) for r in ROWS] == [12, 0, 0, 0, 12]
''',
    ),
    (
        "md",
        r"""
## 1. Add, change, delete, re-run

A new document, a changed one (a sentence appended) and a deleted one. The re-run compares content
hashes with the store and only chunks, embeds and compresses what is new or changed; the deleted
document's chunks leave the index in the same commit.
""",
    ),
    (
        "code",
        r"""
(FOLDER / "lighthouse-0000.txt").write_text(
    "The Brenmark lighthouse stands on a basalt headland. It was first lit in 1871 and its lamp can be "
    "seen 23 nautical miles out to sea. The keeper's cottage is now a small museum.\n"
)
with (FOLDER / "dev-town-0000.txt").open("a") as town:
    town.write("A new bridge over the river was opened in 2019.\n")
(FOLDER / "dev-ship-0001.txt").unlink()
second = ragcompress("index", str(FOLDER), "--index", str(INDEX), "--no-progress")
print(second)
assert [reported(second, r) for r in ROWS[:4]] == [1, 1, 1, 10]
third = ragcompress("index", str(FOLDER), "--index", str(INDEX), "--no-progress")
assert [reported(third, r) for r in ROWS] == [0, 0, 0, 12, 0]  # nothing left to do
print("third run: nothing to do, every document unchanged")
""",
    ),
    (
        "md",
        r"""
## 2. `info --json` into pandas
""",
    ),
    (
        "code",
        r"""
info = json.loads(ragcompress("info", str(INDEX), "--json"))
table = pd.json_normalize(info).T.rename(columns={0: "value"})
assert info["documents"] == 12 and info["vector_dtype"] == "fp16"
table
""",
    ),
    (
        "code",
        r"""
check = subprocess.run([sys.executable, "-m", "ragcompress", "info", str(INDEX), "--check"], capture_output=True, text=True)
print(check.stdout.strip()[-600:])
assert check.returncode == 0  # manifest, checksums and counts agree
""",
    ),
    (
        "md",
        r"""
## 3. fp16 vs int8 on disk, built by the Ray engine

The same folder indexed again with `--vector-dtype int8` (one byte per value plus one float32 scale per
vector; notebook 02 measures what that does to perplexity), this time with `--engine ray`: chunks are
embedded and compressed on Ray actors (`--workers`, default one per GPU, else one), on a local cluster
started for the run unless `RAY_ADDRESS` names one. The engines return results in order, so the store
holds the same documents and chunks either way. On a laptop Ray is slower than `local` (starting it
costs more than it saves); it pays on a machine with several GPUs, or a cluster.
""",
    ),
    (
        "code",
        r"""
import importlib.util

INT8 = WORK / "index-int8"
engine = "ray" if importlib.util.find_spec("ray") is not None else "local"
if engine == "local":
    print("ray is not installed here (pip install 'ragcompress[ray]'): the local engine builds it instead")
print(ragcompress("index", str(FOLDER), "--index", str(INT8), "--vector-dtype", "int8", "--engine", engine,
                  "--workers", "1", "--no-progress"))
int8_info = json.loads(ragcompress("info", str(INT8), "--json"))
assert all(int8_info[k] == info[k] for k in ("documents", "chunks", "tokens", "vectors"))  # same content


def disk(index: Path) -> dict[str, int]:
    parts = {"vectors/": 0, "faiss.index": 0, "meta.sqlite": 0, "other": 0}
    for path in index.rglob("*"):
        if path.is_file():
            part = "vectors/" if path.parent.name == "vectors" else path.name if path.name in parts else "other"
            parts[part] += path.stat().st_size
    return parts


sizes = pd.DataFrame({"fp16": disk(INDEX), "int8": disk(INT8)}).T
sizes["bytes per text token"] = [info["bytes_per_token"], int8_info["bytes_per_token"]]
assert sizes.loc["int8", "vectors/"] < 0.55 * sizes.loc["fp16", "vectors/"]
sizes
""",
    ),
    (
        "code",
        r"""
ax = (sizes.drop(columns="bytes per text token") / 1024).plot.barh(stacked=True, figsize=(8, 2.8))
ax.set_title(f"Index size on disk, {info['chunks']} chunks / {info['tokens']} text tokens")
ax.set_xlabel("KiB")
ax.set_ylabel("vector dtype")
plt.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        r"""
## 4. A FAISS IVF index over a few hundred chunks

`--faiss ivf` clusters the chunk embeddings into about 4·√n lists and searches the `nprobe` nearest
lists only; it needs ≥ 39 training vectors per list and at least 8 lists, so below ~312 chunks an IVF
index stays a flat one. To get there quickly this corpus is the start (900 characters) of 40 sections of
Python's reference manual (`pydoc_data.topics`, shipped with Python), cut into small 24-token chunks.
""",
    ),
    (
        "code",
        r"""
from pydoc_data.topics import topics

MANUAL = WORK / "manual"
MANUAL.mkdir()
names = [n for n in sorted(topics) if n.isalpha()][:40]
for name in names:
    (MANUAL / f"{name}.txt").write_text(topics[name][:900])
IVF = WORK / "index-ivf"
ivf_run = ragcompress("index", str(MANUAL), "--index", str(IVF), "--faiss", "ivf", "--chunk-tokens", "24",
                      "--overlap", "0", "--vector-dtype", "int8", "--no-progress")
print(ivf_run)
ivf_info = json.loads(ragcompress("info", str(IVF), "--json"))
print({k: ivf_info[k] for k in ("documents", "chunks", "tokens", "faiss")})
assert ivf_info["faiss"]["kind"] == "ivf" and ivf_info["chunks"] >= 312
lists = min(int(4 * ivf_info["chunks"] ** 0.5), ivf_info["chunks"] // 39)
print(f"{ivf_info['chunks']} chunks → {lists} inverted lists, {ivf_info['faiss']['nprobe']} searched per query")
""",
    ),
    (
        "md",
        r"""
Two things the numbers above show. FAISS searches `min(nprobe, lists)` lists, so with 10 lists and
the default `nprobe` of 16 this small index still scans every list: the saving of IVF starts when there
are many more lists than `nprobe` (about 4·√n lists, 1,264 at 100,000 chunks, where 16 lists are 1.3 %
of them). And every chunk costs κ = 50 vectors whatever its length, so these 24-token chunks take about
seven times the bytes per text token of section 3's int8 index: small chunks are for demonstrating
IVF quickly, not for storing a corpus.
""",
    ),
    (
        "code",
        r"""
from ragcompress import Retriever

queries = {
    "How does the assert statement work?": "assert",
    "What does the break statement do inside a loop?": "break",
    "How are class definitions executed?": "class",
}
with Retriever(IVF) as retriever:
    started = time.perf_counter()
    hits = retriever.search_batch(list(queries), k=3)
    seconds = time.perf_counter() - started
for (query, expected), row in zip(queries.items(), hits):
    print(f"{query:<50} → {[p.doc_id for p in row]}")
    assert expected in [p.doc_id for p in row]
print(f"{len(queries)} searches over {ivf_info['chunks']} chunks in {seconds * 1000:.0f} ms (embedding included)")
""",
    ),
    ("code", ELAPSED),
]


NOTEBOOKS = {
    "02-what-summary-vectors-keep.ipynb": NB02,
    "03-fused-text-replug.ipynb": NB03,
    "04-compress-your-corpus.ipynb": NB04,
}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    for kind, text in cells:
        text = text.strip("\n")
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        notebook.cells.append(make(text))
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run each notebook and store its outputs")
    parser.add_argument("--only", default="", help="prefix of the notebooks to write (e.g. 03)")
    args = parser.parse_args()
    for name, cells in NOTEBOOKS.items():
        if not name.startswith(args.only):
            continue
        path = NOTEBOOK_DIR / name
        notebook = build(cells)
        if args.execute:
            started = time.perf_counter()

            def progress(cell, cell_index, name=name, started=started, **_):
                print(f"{name}: cell {cell_index} done at {time.perf_counter() - started:.0f} s", flush=True)

            client = NotebookClient(
                notebook,
                timeout=1800,
                kernel_name="python3",
                resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
                on_cell_executed=progress,
            )
            try:
                client.execute()
            except Exception:
                failed = Path(tempfile.gettempdir()) / f"failed-{name}"
                nbformat.write(notebook, failed)  # for reading the outputs so far; notebooks/ is left alone
                print(f"{name} failed; the partial run is in {failed}", file=sys.stderr)
                raise
            print(f"{name}: executed in {time.perf_counter() - started:.0f} s")
        nbformat.write(notebook, path)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
