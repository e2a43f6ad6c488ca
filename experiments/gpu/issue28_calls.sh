#!/usr/bin/env bash
# The open measurements of issue 28, as three device calls of under 10 minutes on one H200. Each writes
# its results and logs under $OUT as they come (a call cut short keeps them). Run 1 first: it decides.
#   bash experiments/gpu/issue28_calls.sh 1   # batch-1 fused prompt compiled too (COMPILE_PROMPT), profiled
#   bash experiments/gpu/issue28_calls.sh 2   # the compiled text step at batch 16, for the compiled ratio; CUDA tests
#   bash experiments/gpu/issue28_calls.sh 3   # end to end with the compiled step again: does batch 1's `fuse` 43.9 ms repeat?
# Carry `.gpuD` (faiss-cpu, gguf, sqlite-utils wheels for Python 3.12; the recipe in README.md here).
# The 2026-12-05 calls (this script's previous version) are in benchmarks/results/*-h200-dynamic*, answer_e2e-h200.json.
set -u
: "${OUT:?run on the device machine, where OUT is set}"
pip install -q --no-index --no-deps --target /tmp/site .gpuD/whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, transformers; print(torch.__version__, transformers.__version__)"; } > "$OUT/device.txt"
case "${1:?which call: 1, 2 or 3}" in
1)
  timeout 540 python benchmarks/fused_decode.py --batches 1 --largest "" --compiled "fused:1" \
    --compile-kinds dynamic --compile-prompt --profile fused:1:fast+compile-dynamic --budget-s 400 \
    --out "$OUT/fused_decode-compile-prompt.json" > "$OUT/call1.log" 2>&1
  echo "fused_decode rc $?" >> "$OUT/call1.log"
  ;;
2)
  timeout 300 python benchmarks/fused_decode.py --batches 16 --largest "" --compiled "text:16" \
    --compile-kinds dynamic --budget-s 200 --out "$OUT/fused_decode-text-dynamic.json" > "$OUT/call2.log" 2>&1
  echo "fused_decode rc $?" >> "$OUT/call2.log"
  timeout 280 python -m pytest -q -rs tests/modeling/test_fast_decode.py tests/training/test_fastpath.py > "$OUT/fastpath.log" 2>&1
  echo "fastpath tests rc $?" >> "$OUT/fastpath.log"
  ;;
3)
  timeout 570 python benchmarks/answer_e2e.py --index-batch 64 --compile-decode dynamic \
    --out "$OUT/answer_e2e.json" > "$OUT/call3.log" 2>&1
  echo "answer_e2e rc $?" >> "$OUT/call3.log"
  ;;
esac
tail -n 4 "$OUT"/*.log
