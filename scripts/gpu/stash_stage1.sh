# Phase 2 of the v2 run, call 2 (between stash_a2.sh and launch_v1.sh): park the stage-1 adapter that
# phase 1 returned (carried as .gpuC/stage1-final.tar) where pipeline_v2.sh's stage 2 starts from it.
set -e
mkdir -p /root/stash/work/stage1 && tar -C /root/stash/work/stage1 -xf .gpuC/stage1-final.tar
ls -la /root/stash/work/stage1/final
