# Second GPU session, call 2: join the GGUF, then stage 2 with the affine summary readout, starting from
# the stage-1 adapter (carried in .gpuB/stage1/final); export the result as the default adapter.
set -e
source experiments/gpu/env.sh
source experiments/gpu/join_base.sh
W=$S/work; mkdir -p $W/stage1 && cp -r .gpuB/stage1/final $W/stage1/
python3 scripts/train_default.py stage2 --work $W --corpus $S/corpus --max-seconds ${1:-440} --set progress=false \
  max_steps=190 warmup_steps=20 summary_readout=affine eval_every=95 save_every=40 max_valid_sequences=16 2>&1 \
  | grep -v -i warn | tail -3
[ -d $W/stage2/final ] || python3 scripts/train_default.py finalize --which stage2 --work $W 2>&1 | tail -1
python3 scripts/train_default.py export --work $W
tar -C ragcompress -cf $OUT/default_adapter.tar default_adapter
cp $W/stage2/metrics.jsonl $OUT/stage2_metrics.jsonl
