# Environment for the default-model runs on a lent GPU machine (see experiments/gpu/README.md).
export S=${S:-/root/stash}  # tests point it elsewhere
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=true
export PYTHONPATH=$S/site:$PWD
export RAGCOMPRESS_CACHE=$S/cache RAGCOMPRESS_SMOLLM2_GGUF=$S/SmolLM2-135M-Instruct.Q4_1.gguf
# NVLink multicast stays off (the lent machines' rule; torchrun's ranks inherit these)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
# the training stages run data-parallel over every GPU of the machine (one process each)
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
# a sub-pipeline of a combined phase (pipeline_v2.sh PHASE=a+b) sees only its share of the GPUs
if [ -n "$CUDA_VISIBLE_DEVICES" ]; then NGPU=$(tr ',' '\n' <<< "$CUDA_VISIBLE_DEVICES" | grep -c .); fi
TRAIN="python3"
if [ "${NGPU:-0}" -gt 1 ]; then TRAIN="python3 -m torch.distributed.run --standalone --nproc_per_node=$NGPU"; fi
export NGPU TRAIN
# the default embedder saved as fp16 (stash_extra.sh .gpuE; its package's 90 MB fit no call): every QA
# evaluation through an index reads it when it is parked
EMB=(); [ -d $S/minilm ] && EMB=(--embedder $S/minilm)
