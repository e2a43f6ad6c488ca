"""What pyproject.toml promises about installing: every extra installs next to the base dependencies, and
none of them brings a second distribution of the `faiss` module (faiss-gpu and faiss-cpu collide)."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11

PROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_exactly_one_faiss_distribution_whatever_the_extras():
    base = [_name(r) for r in PROJECT["dependencies"]]
    assert [n for n in base if n.startswith("faiss")] == ["faiss-cpu"]
    for extra, requirements in PROJECT["optional-dependencies"].items():
        faiss = [r for r in requirements if _name(r).startswith("faiss")]
        assert not faiss, f"extra [{extra}] adds {faiss} next to faiss-cpu: two packages of one module"


def test_the_gpu_extra_is_flash_attention():
    assert [_name(r) for r in PROJECT["optional-dependencies"]["gpu"]] == ["flash-attn"]
