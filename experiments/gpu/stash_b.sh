# Call 2: join the halves, install the few missing wheels, convert the base once, then train.
set -e
source experiments/gpu/env.sh
cp .gpuB/gguf.part01 .gpuB/corpus.part01 $S/
cat $S/gguf.part00 $S/gguf.part01 > $S/SmolLM2-135M-Instruct.Q4_1.gguf
[ "$(sha256sum < $S/SmolLM2-135M-Instruct.Q4_1.gguf | cut -d' ' -f1)" = "$(cut -d' ' -f1 .gpuB/gguf.sha256)" ]
cat $S/corpus.part00 $S/corpus.part01 | xz -d | tar -C $S -xf -
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $S/site .gpuB/whl/*.whl
python3 -c "from ragcompress.defaults import base_model_dir; print(base_model_dir())"
rm -f $S/gguf.part0* $S/corpus.part0*
