#!/usr/bin/env bash
# The open measurements of issue 28, as device calls of under 10 minutes on one GPU (H100 or H200: every
# ratio is measured within one call). Each writes its results and logs under $OUT as they come (a call
# cut short keeps them).
#   bash experiments/gpu/issue28_calls.sh 1    # end to end, the default step (graph-embedded questions, one-launch
#                                              # cache reset, flat search on the GPU), summary vectors read from the
#                                              # host and held on the GPU; builds the 10,000-passage index
#   bash experiments/gpu/issue28_calls.sh 1b [dynamic|regional]   # end to end, compiled step + prompt, on call 1's index:
#                                              # run it right after 1, while the machine is still warm
#   bash experiments/gpu/issue28_calls.sh 1h [off,on|on] [repeats]   # end to end on a fresh machine (~360 s): the index,
#                                              # then the regional step with summary vectors read from the host, then held
#   bash experiments/gpu/issue28_calls.sh 1p   # 1h held only, then profile_first_token.py on its index (~500 s)
#   bash experiments/gpu/issue28_calls.sh 1d   # batch 1 only, the dynamic step, index included (~500 s, one fresh machine)
#   bash experiments/gpu/issue28_calls.sh 2    # batch 16: compiled fused (cache buckets 256 and 128) and compiled text
#                                              # in one run (the compiled ratio)
#   bash experiments/gpu/issue28_calls.sh 3    # the CUDA tests of the fast paths and the device search
#   bash experiments/gpu/issue28_calls.sh r    # compile="regional" (one layer compiled for all) against "dynamic"
#                                              # (the whole step): warm-up and speed, fused batch 1 and 16
# Why 1 and 1b: on 2026-12-05 one call did both (indexing 222 s on an H200, then the compiled warm-up) and
# ran out of its 585 s inside the warm-up, with no row. The index (4.2 GB) stays in /tmp/e2e between calls
# on a warm machine; on a fresh one 1b stops at once (exit 3) rather than rebuild it and run out of time.
# Carry `.gpuD` (faiss-cpu, gguf, sqlite-utils wheels for Python 3.12; the recipe in README.md here).
# Earlier calls: benchmarks/results/*-h200-dynamic*, answer_e2e-h200.json (2026-12-05, first session),
# fused_decode-h100-compile-prompt.json and -h100-text-dynamic.json (2026-12-05, second session),
# flat_search-h200.json (2026-12-05, fifth session); answer_e2e-h100.json and -h100-regional.json (1, 1b regional),
# fused_decode-h100-regional.json (r) and the CUDA tests (3), 2026-12-05, sixth session, one H100;
# answer_e2e-h100-regional-held.json (1h) and -h100-dynamic-held-oom.json (1b dynamic, out of memory at text's
# batch 16 with the vectors held: text rows now run without them), seventh session, one H100.
# 1p, 1d, 2 (with --cache-buckets 256,128) and test_fastpath ran on one H100 on 2026-12-06 (eleventh session):
# answer_e2e-h100-regional-held-r5.json, first_token_profile-h100*.json/txt, answer_e2e-h100-dynamic-b1.json,
# fused_decode-h100-b16-cache-buckets.json. 1p again later that day (the next session; PROMPT_BUCKET 16 and
# CACHE_BUCKET 128): answer_e2e-h100-regional-held-p16.json, first_token_profile-h100-p16*.
set -u
: "${OUT:?run on the device machine, where OUT is set}"
pip install -q --no-index --no-deps --target /tmp/site .gpuD/whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import torch, transformers; print(torch.__version__, transformers.__version__)"; } > "$OUT/device.txt"
case "${1:?which call: 1, 1b, 1d, 1h, 1p, 2, 3 or r}" in
1)
  # ~30 s model, ~220 s indexing, then the rows of the default step (~2 min)
  timeout 585 python benchmarks/answer_e2e.py --index-batch 64 --work /tmp/e2e --compile-decode off --gpu-vectors off,on \
    --out "$OUT/answer_e2e.json" > "$OUT/call1.log" 2>&1
  echo "answer_e2e rc $?" >> "$OUT/call1.log"
  ;;
1b)
  # a fresh machine has no index: rebuilding it (~220 s) and compiling do not fit one call, so stop at once
  [ -d /tmp/e2e/index ] || { echo "no index from call 1 on this machine (a fresh one): run call 1 first" | tee "$OUT/call1b.log"; exit 3; }
  # the warm-up (compiling the step and the prompt, batches 1 and 2) is logged a batch at a time
  timeout 585 python benchmarks/answer_e2e.py --index-batch 64 --work /tmp/e2e --compile-decode "${2:-dynamic}" --gpu-vectors on \
    --out "$OUT/answer_e2e-${2:-dynamic}.json" >> "$OUT/call1b.log" 2>&1
  echo "answer_e2e rc $?" >> "$OUT/call1b.log"
  ;;
1h)
  # end to end on a fresh machine: the index, then the regional step with summary vectors read from the
  # host and held on the GPU (one Retriever each, the device cleared between them)
  # (`1h on`: held only, with 5 repeats a row rather than 3)
  timeout 585 python benchmarks/answer_e2e.py --index-batch 64 --work /tmp/e2e --compile-decode regional \
    --gpu-vectors "${2:-off,on}" --repeats "${3:-3}" --out "$OUT/answer_e2e-regional-held.json" > "$OUT/call1h.log" 2>&1
  echo "answer_e2e rc $?" >> "$OUT/call1h.log"
  ;;
1p)
  # one call on a fresh machine (~500 s): 1h with the vectors held only (5 repeats a row), then where batch 1's
  # first token goes on the same index (profile_first_token.py), then the training fast path's CUDA tests
  timeout 400 python benchmarks/answer_e2e.py --index-batch 64 --work /tmp/e2e --compile-decode regional \
    --gpu-vectors on --repeats 5 --out "$OUT/answer_e2e-regional-held.json" > "$OUT/call1p.log" 2>&1
  echo "answer_e2e rc $?" >> "$OUT/call1p.log"
  timeout 150 python experiments/gpu/profile_first_token.py --out "$OUT" > "$OUT/profile.log" 2>&1
  echo "profile rc $?" >> "$OUT/profile.log"
  timeout 90 python -m pytest -q -rs tests/training/test_fastpath.py > "$OUT/fastpath.log" 2>&1
  echo "fastpath tests rc $?" >> "$OUT/fastpath.log"
  ;;
1d)
  # batch 1 end to end with the dynamic step, on a fresh machine in one call (~500 s): the index (~210 s),
  # the warm-up for batch 1 only (~210 s; batch 2's, ~300 s more, is what kept 1 + 1b apart), then fused
  # and text at batch 1 with the vectors held
  timeout 585 python benchmarks/answer_e2e.py --index-batch 64 --work /tmp/e2e --compile-decode dynamic \
    --gpu-vectors on --batches 1 --warm-up-batches 1 --repeats 5 --out "$OUT/answer_e2e-dynamic-b1.json" \
    > "$OUT/call1d.log" 2>&1
  echo "answer_e2e rc $?" >> "$OUT/call1d.log"
  ;;
2)
  # generate and the uncompiled fast path at batch 16, then the dynamic step: fused with CACHE_BUCKET 256 (768
  # cache slots for 640 used) and 128 (640), then text (text at 128 last, if time is left)
  timeout 580 python benchmarks/fused_decode.py --batches 16 --largest "" --compiled "fused:16;text:16" \
    --compile-kinds dynamic --cache-buckets 256,128 --budget-s 480 --out "$OUT/fused_decode-b16-dynamic.json" \
    > "$OUT/call2.log" 2>&1
  echo "fused_decode rc $?" >> "$OUT/call2.log"
  ;;
3)
  # flat_search.py ran on an H200 on 2026-12-05 (results/flat_search-h200.json); the tests are left
  # test_fast_embed's other tests read the real all-MiniLM-L6-v2, a package the device does not have
  timeout 560 python -m pytest -q -rs tests/store/test_device_search.py tests/store/test_device_vectors.py \
    tests/test_fast_embed.py::test_on_a_gpu_the_graphs_replay_encodes_embeddings \
    tests/modeling/test_fast_decode.py tests/training/test_fastpath.py > "$OUT/fastpath.log" 2>&1
  echo "fastpath tests rc $?" >> "$OUT/fastpath.log"
  ;;
r)
  # regional first, so it finds no kernel that the whole-step compilation built in this process
  timeout 585 python benchmarks/fused_decode.py --batches 1 --largest "" --compiled "fused:1,16" \
    --compile-kinds regional,dynamic --budget-s 450 --out "$OUT/fused_decode-regional.json" > "$OUT/callr.log" 2>&1
  echo "fused_decode rc $?" >> "$OUT/callr.log"
  ;;
esac
tail -n 4 "$OUT"/*.log
