# Sourced by the second call of a run: join the two GGUF halves (first one parked in $S by an earlier
# call, second one carried in .gpuB), check the checksum, install the missing wheels, convert the base.
cat $S/gguf.part00 .gpuB/gguf.part01 > $S/SmolLM2-135M-Instruct.Q4_1.gguf && rm $S/gguf.part00
[ "$(sha256sum < $S/SmolLM2-135M-Instruct.Q4_1.gguf | cut -d' ' -f1)" = "$(cut -d' ' -f1 .gpuB/gguf.sha256)" ]
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $S/site .gpuB/whl/*.whl
python3 -c "from ragcompress.defaults import base_model_dir; print(base_model_dir())" 2>&1 | tail -1
