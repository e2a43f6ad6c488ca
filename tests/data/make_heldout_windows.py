"""Rebuild tests/data/heldout-windows.json: held-out text for the default-model test that summary vectors
carry content. Needs data/corpus (scripts/build_corpus.py); run from the repo root:

    python tests/data/make_heldout_windows.py
"""

import json
from pathlib import Path

from ragcompress.data.documents import read_documents
from ragcompress.defaults import load_tokenizer

SOURCES = ("austen", "shakespeare", "python-docs", "linux-docs")
WINDOW = 1024  # one 512-token context segment + the 512 tokens it should help predict


def main() -> None:
    tokenizer = load_tokenizer()
    windows = []
    for source in SOURCES:
        for doc in read_documents(f"data/corpus/{source}/test.jsonl", "text"):
            ids = tokenizer(doc.text, add_special_tokens=False)["input_ids"]
            if len(ids) >= WINDOW:
                windows.append({"id": doc.key.split("#", 1)[1], "input_ids": ids[:WINDOW]})
                break
    about = (
        "First 1,024 SmolLM2 tokens of the first long-enough test-split document of four corpus "
        "sources (held out from training); built by tests/data/make_heldout_windows.py."
    )
    out = Path(__file__).parent / "heldout-windows.json"
    out.write_text(json.dumps({"about": about, "windows": windows}))
    print([(w["id"], len(w["input_ids"])) for w in windows])


if __name__ == "__main__":
    main()
