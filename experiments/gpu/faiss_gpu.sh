#!/usr/bin/env bash
# GPU FAISS on the device, for issue 28's last row (flat and IVF searches through GPU FAISS). No GPU build of
# faiss fits one device call: faiss-gpu-cuvs 1.15.1 (CUDA 13, the device's torch's) is 119 MB and needs
# cuVS, RAFT and RMM (245 MB more); the device image has the CUDA 13 libraries they link (cuBLAS, cuRAND,
# cuSOLVER, cuSPARSE, NVRTC, NCCL, nvJitLink). So the wheels travel in parts, one per call, onto one warm
# machine (it goes back after 30 s idle: make the calls back to back), parked in /tmp/fgpu between calls.
#   bash experiments/gpu/faiss_gpu.sh prepare      # here: the wheels, as parts of 30 MiB in .gpuF/NN
#   bash experiments/gpu/faiss_gpu.sh park NN      # there, carry [".gpuF/NN"]: keep part NN
#   bash experiments/gpu/faiss_gpu.sh run [ARGS]   # there, after the last part, carry [".gpuD", ".gpuF/sha256"]: join,
#                                                  # install, then the tests and flat_search.py ARGS (default:
#                                                  # --kinds flat,ivf at 10^4, 10^5 and 10^6 chunks)
#   TAG=x bash experiments/gpu/faiss_gpu.sh measure ARGS   # again on the same machine, rows in
#                                                  # $OUT/flat_search-gpu-faiss-x.json
# Ran on one H100 on 2026-12-06 (benchmarks/results/flat_search-h100-faiss-gpu*.json): the wheel asks for cuBLAS
# and the CUDA runtime >= 13.2, and loaded against the image's 13.1 and 13.0 (driver 580); where it does not,
# `run` says so, with the unresolved symbols, before it measures anything.
set -u
# the installed GPU build first on the import path, its libraries and the image's CUDA ones on the loader's
with_gpu_faiss() {
  export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
  local libs
  libs=$(ls -d /tmp/site/lib*/lib64 /tmp/site/*.libs 2>/dev/null | tr '\n' :)
  libs+=$(python -c "import glob, nvidia; print(':'.join(glob.glob(list(nvidia.__path__)[0] + '/*/lib')))"):
  export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:-}"
}
# flat_search.py with the arguments given (default: flat and IVF rows at three sizes), logged under $OUT
measure() {
  local name=flat_search-gpu-faiss${TAG:+-$TAG}
  [ $# -gt 0 ] || set -- --kinds flat,ivf --sizes 10000,100000,1000000
  timeout 300 python benchmarks/flat_search.py "$@" --out "$OUT/$name.json" > "$OUT/$name.log" 2>&1
  echo "flat_search rc $?" >> "$OUT/$name.log"
  tail -n 3 "$OUT/$name.log"
}
case "${1:?prepare, park NN, run or measure}" in
prepare)
  work=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux2014_x86_64 -d "$work" faiss-gpu-cuvs==1.15.1 "libcuvs-cu13==26.6.*" \
    "libraft-cu13==26.6.*" "librmm-cu13==26.6.*" "rapids-logger==0.2.*" || exit 1
  rm -rf .gpuF && mkdir -p .gpuF
  tar -C "$work" -cf - . | split -b 30M -d -a 2 - .gpuF/
  tar -C "$work" -cf - . | sha256sum | cut -d' ' -f1 > .gpuF/sha256
  rm -rf "$work"
  ls .gpuF
  ;;
park)
  : "${OUT:?run on the device machine}"
  mkdir -p /tmp/fgpu && cp ".gpuF/${2:?which part}" /tmp/fgpu/ && ls -la /tmp/fgpu | tee "$OUT/parked.txt"
  ;;
run)
  : "${OUT:?run on the device machine}"
  got=$(cat /tmp/fgpu/[0-9][0-9] | sha256sum | cut -d' ' -f1)
  [ "$got" = "$(cat .gpuF/sha256)" ] || { echo "parts missing or damaged: $(ls /tmp/fgpu)" | tee "$OUT/faiss.txt"; exit 3; }
  mkdir -p /tmp/fwhl && cat /tmp/fgpu/[0-9][0-9] | tar -C /tmp/fwhl -xf - || exit 1
  pip install -q --no-index --no-deps --target /tmp/site .gpuD/whl/*.whl >/dev/null 2>&1
  rm -rf /tmp/site/faiss /tmp/site/faiss_cpu*  # faiss-cpu out: one `faiss` module, the GPU build's
  pip install -q --no-index --no-deps --upgrade --target /tmp/site /tmp/fwhl/*.whl > "$OUT/install.log" 2>&1
  with_gpu_faiss
  python -c "import torch, faiss; print(faiss.__version__, 'GPUs seen by faiss:', faiss.get_num_gpus())" \
    > "$OUT/faiss.txt" 2>&1
  cat "$OUT/faiss.txt"
  if ! grep -q "GPUs seen by faiss: [1-9]" "$OUT/faiss.txt"; then
    # why not: the CUDA libraries the image has, and what the GPU build's library cannot resolve
    { nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
      pip list 2>/dev/null | grep -i -E "^nvidia-(cuda-runtime|cublas|curand|nvjitlink)"
      ldd -r /tmp/site/faiss/_swigfaiss*.so 2>&1 | grep -E "not found|undefined" | head -20; } >> "$OUT/faiss.txt"
    cat "$OUT/faiss.txt"; exit 4
  fi
  timeout 200 python -m pytest -q -rs tests/store/test_device_search.py > "$OUT/tests.log" 2>&1
  echo "tests rc $?" >> "$OUT/tests.log"
  measure "${@:2}"
  ;;
measure)
  : "${OUT:?run on the device machine}"
  with_gpu_faiss
  measure "${@:2}"
  ;;
esac
