"""notebooks/04-compress-your-corpus.ipynb: compress your own corpus at scale."""

from __future__ import annotations

from notebook_cells.shared import ELAPSED, SETUP

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
