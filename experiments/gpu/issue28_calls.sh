#!/usr/bin/env bash
# The open measurements of issue 28, as three device calls of under 10 minutes on one GPU (H100 or H200:
# every ratio is measured within one call). Each writes its results and logs under $OUT as they come (a
# call cut short keeps them). Run 1 first: it is the product's number.
#   bash experiments/gpu/issue28_calls.sh 1   # end to end, compiled step + compiled prompt + graph-embedded questions
#   bash experiments/gpu/issue28_calls.sh 2   # batch 16: compiled fused and compiled text in one run (the compiled ratio)
#   bash experiments/gpu/issue28_calls.sh 3   # flat search on the GPU against FAISS on the CPU, then the CUDA tests
# Carry `.gpuD` (faiss-cpu, gguf, sqlite-utils wheels for Python 3.12; the recipe in README.md here).
# Earlier calls: benchmarks/results/*-h200-dynamic*, answer_e2e-h200.json (2026-12-05, first session),
# fused_decode-h100-compile-prompt.json and -h100-text-dynamic.json (2026-12-05, second session).
set -u
: "${OUT:?run on the device machine, where OUT is set}"
pip install -q --no-index --no-deps --target /tmp/site .gpuD/whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, transformers; print(torch.__version__, transformers.__version__)"; } > "$OUT/device.txt"
case "${1:?which call: 1, 2 or 3}" in
1)
  # ~200 s indexing, ~4 min compiling (step and prompt, batch 1 and 2), then batch 1's rows first
  timeout 585 python benchmarks/answer_e2e.py --index-batch 64 --compile-decode dynamic \
    --out "$OUT/answer_e2e.json" > "$OUT/call1.log" 2>&1
  echo "answer_e2e rc $?" >> "$OUT/call1.log"
  ;;
2)
  timeout 580 python benchmarks/fused_decode.py --batches 16 --largest "" --compiled "fused:16;text:16" \
    --compile-kinds dynamic --budget-s 480 --out "$OUT/fused_decode-b16-dynamic.json" > "$OUT/call2.log" 2>&1
  echo "fused_decode rc $?" >> "$OUT/call2.log"
  ;;
3)
  # 10k / 100k / 1M × 384 flat (~1 min), then the CUDA tests, the device search's first
  timeout 120 python benchmarks/flat_search.py --out "$OUT/flat_search.json" > "$OUT/flat_search.log" 2>&1
  echo "flat_search rc $?" >> "$OUT/flat_search.log"
  timeout 440 python -m pytest -q -rs tests/store/test_device_search.py tests/test_fast_embed.py \
    tests/modeling/test_fast_decode.py tests/training/test_fastpath.py > "$OUT/fastpath.log" 2>&1
  echo "fastpath tests rc $?" >> "$OUT/fastpath.log"
  ;;
esac
tail -n 4 "$OUT"/*.log
