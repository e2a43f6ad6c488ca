# Phase 2 of the v2 run, call 2 (between stash_a2.sh and launch_v1.sh): park the stage-1 adapter that
# phase 1 returned (.gpuC/stage1-final.tar) as work/stage1a, and the whole corpus (.gpuC/corpus-full.tar.xz,
# data/corpus packed) as corpus-full: phase 1 ran ~18 epochs over the 11 MB subset and began to overfit.
# With .gpuC/stage2-final.tar instead (PHASE=stage2more), that adapter is parked as work/stage2a.
set -e
D=${1:-.gpuC}  # the carried folder
mkdir -p /root/stash/full
for s in stage1 stage2; do
  [ -f $D/$s-final.tar ] && mkdir -p /root/stash/work/${s}a && tar -C /root/stash/work/${s}a -xf $D/$s-final.tar
done
xz -d < $D/corpus-full.tar.xz | tar -C /root/stash/full -xf -
ls /root/stash/work/*/final /root/stash/full/corpus
