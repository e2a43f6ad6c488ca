"""notebooks/03-fused-text-replug.ipynb: fused vs text vs REPLUG on your own folder."""

from __future__ import annotations

from notebook_cells.shared import ELAPSED, SETUP

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
