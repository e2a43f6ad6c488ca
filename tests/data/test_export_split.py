"""scripts/export_split.py: a corpus split as a folder of documents, byte for byte, refusing to overwrite."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _corpus(root: Path) -> Path:
    for source, records in {
        "linux-docs": [
            ("linux-docs/admin-guide/init#00000", "Init.\n\nÜber café"),
            ("linux-docs/x86/iommu#00001", "b"),
        ],
        "python-docs": [("python-docs/c-api/coro#00000", "coroutines")],
    }.items():
        (root / source).mkdir(parents=True)
        lines = [json.dumps({"id": i, "source": source, "text": t}) for i, t in records]
        (root / source / "validation.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_every_record_becomes_one_file_holding_its_text(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    out = tmp_path / "heldout"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "export_split.py"), "--corpus", str(corpus),
         "--sources", "linux-docs,python-docs", "--split", "validation", "--out", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "3 documents written" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "linux-docs_admin-guide_init_00000.txt",
        "linux-docs_x86_iommu_00001.txt",
        "python-docs_c-api_coro_00000.txt",
    ]
    assert (out / "linux-docs_admin-guide_init_00000.txt").read_text(encoding="utf-8") == "Init.\n\nÜber café"


def test_it_names_a_missing_split_and_never_overwrites(tmp_path):
    spec = importlib.util.spec_from_file_location("export_split", REPO / "scripts" / "export_split.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    corpus = _corpus(tmp_path / "corpus")
    with pytest.raises(SystemExit, match="test.jsonl is missing"):
        module.export(corpus, ["linux-docs"], "test", tmp_path / "a")
    out = tmp_path / "b"
    out.mkdir()
    (out / "python-docs_c-api_coro_00000.txt").write_text("mine")
    with pytest.raises(SystemExit, match="exists already"):
        module.export(corpus, ["python-docs"], "validation", out)
    assert (out / "python-docs_c-api_coro_00000.txt").read_text() == "mine"
