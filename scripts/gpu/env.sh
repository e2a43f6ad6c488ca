# Environment for the default-model runs on a lent GPU machine (see scripts/gpu/README.md).
export S=/root/stash
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=true
export PYTHONPATH=$S/site:$PWD
export RAGCOMPRESS_CACHE=$S/cache RAGCOMPRESS_SMOLLM2_GGUF=$S/SmolLM2-135M-Instruct.Q4_1.gguf
