"""Cells every notebook starts or ends with: imports, a work folder, the `ragcompress` command line."""

from __future__ import annotations

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
