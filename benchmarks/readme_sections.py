"""Keep one generated section of benchmarks/README.md up to date, leaving every other section alone.

A section is the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``; it is replaced in place,
or appended at the end of the file the first time.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

README = Path(__file__).parent / "README.md"


def update_section(name: str, body: str, readme: Path = README) -> None:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text, encoding="utf-8")


def save_result(result: dict, out: Path, section: str, markdown: str, readme: bool = True) -> None:
    """Write a benchmark's JSON result, print its markdown and (unless ``readme`` is false) put it in its
    section of benchmarks/README.md."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown)
    if readme:
        update_section(section, markdown)


def cpu_name() -> str:
    """The CPU as ``lscpu`` names it, with the cores this process may use."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def background_jobs(pattern: str = "train_default") -> list[str]:
    """Other heavy jobs running now (they slow CPU timings down; results say so)."""
    try:
        out = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [line for line in out.splitlines() if line.strip() and str(os.getpid()) not in line.split()[0]]
