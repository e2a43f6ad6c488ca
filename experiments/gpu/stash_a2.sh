# Second GPU session, call 1: park the first GGUF half (and the 10 MB corpus subset, when carried) outside
# the repo. Carry only .gpuA/gguf.part00 when the run needs no subset (stage2more, ablate read the whole
# corpus from .gpuC/.gpuD): the working tree grew until .gpuA as a whole no longer fits in one call's 64 MiB.
set -e
mkdir -p /root/stash && cp .gpuA/gguf.part00 /root/stash/
if [ -f .gpuA/corpus-sub.tar.xz ]; then xz -d < .gpuA/corpus-sub.tar.xz | tar -C /root/stash -xf -; fi
nvidia-smi -L && ls /root/stash
