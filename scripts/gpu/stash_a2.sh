# Second GPU session, call 1: park the first GGUF half and a 10 MB corpus subset outside the repo.
set -e
mkdir -p /root/stash && cp .gpuA/gguf.part00 /root/stash/
xz -d < .gpuA/corpus-sub.tar.xz | tar -C /root/stash -xf -
nvidia-smi -L && ls /root/stash /root/stash/corpus
