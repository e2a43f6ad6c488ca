# Call 1: park the first halves of the GGUF and of the corpus archive outside the repo.
set -e
mkdir -p /root/stash
cp .gpuA/gguf.part00 .gpuA/corpus.part00 /root/stash/
nvidia-smi -L
ls -la /root/stash
