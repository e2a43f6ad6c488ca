#!/usr/bin/env bash
# The open measurements of issue 28 (and the last of issue 26), as three device calls of under 10 minutes
# on one H200. Each writes its results and logs under $OUT as they come (a call cut short keeps them).
#   bash experiments/gpu/issue28_calls.sh 1   # compiled-once decode, fused and text; the batch-1 prompt
#   bash experiments/gpu/issue28_calls.sh 2   # end to end over 10,000 passages, plain and compiled decode
#   bash experiments/gpu/issue28_calls.sh 3   # the CUDA tests of fast decoding and training; the one-shape CUDA-graph recipe
# Carry `.gpuD` (faiss-cpu, gguf, sqlite-utils wheels for Python 3.12; the recipe in README.md here).
set -u
: "${OUT:?run on the device machine, where OUT is set}"
pip install -q --no-index --no-deps --target /tmp/site .gpuD/whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, transformers; print(torch.__version__, transformers.__version__)"; } > "$OUT/device.txt"
case "${1:?which call: 1, 2 or 3}" in
1)
  timeout 400 python benchmarks/fused_decode.py --batches 1,16 --largest "" --compiled "fused:1,16;text:1,16" \
    --compile-kinds dynamic --profile fused:1 --budget-s 300 --out "$OUT/fused_decode-dynamic.json" > "$OUT/call1.log" 2>&1
  echo "fused_decode rc $?" >> "$OUT/call1.log"
  mkdir -p "$OUT/pg0"
  timeout 150 python benchmarks/fused_decode.py --batches 1 --largest "" --compiled "" --prompt-graph-tokens 0 \
    --profile fused:1 --budget-s 100 --out "$OUT/pg0/fused_decode-pg0.json" >> "$OUT/call1.log" 2>&1
  echo "prompt-graph-tokens 0 rc $?" >> "$OUT/call1.log"
  ;;
2)
  timeout 570 python benchmarks/answer_e2e.py --index-batch 64 --compile-decode off,dynamic \
    --out "$OUT/answer_e2e.json" > "$OUT/call2.log" 2>&1
  echo "answer_e2e rc $?" >> "$OUT/call2.log"
  ;;
3)
  timeout 200 python -m pytest -p no:logging -q -rs tests/modeling/test_fast_decode.py tests/training/test_fastpath.py > "$OUT/fastpath.log" 2>&1
  echo "fastpath tests rc $?" >> "$OUT/fastpath.log"
  timeout 420 python benchmarks/stage1_recipe.py --steps 30 --skip 8 --paths plain fast fast-cudagraphs-one-shape \
    --out "$OUT/stage1_recipe-one-shape.json" > "$OUT/call3.log" 2>&1
  echo "stage1_recipe rc $?" >> "$OUT/call3.log"
  ;;
esac
tail -n 4 "$OUT"/*.log
