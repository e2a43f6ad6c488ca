# Third GPU session (default model v1): the whole run as one background job, so it survives between
# calls. Stage 1 from the base with the affine summary readout from step 0 and 25% repeat rows, then
# stage 2 from it, then the PPL/QA evaluation of base, stage 1 and stage 2, then the export.
cd /root/stash/repo && source experiments/gpu/env.sh
W=$S/work; mkdir -p $W
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
python3 scripts/train_default.py stage1 --work $W --corpus $S/corpus --max-seconds ${STAGE1_S:-720} --set \
  progress=false summary_readout=affine repeat_fraction=0.25 learning_rate=8e-4 max_steps=${STAGE1_STEPS:-900} \
  warmup_steps=${STAGE1_WARMUP:-60} eval_every=${STAGE1_EVAL:-300} save_every=150 max_valid_sequences=32 2>&1 | grep -v -i warn > $W/stage1.log
[ -d $W/stage1/final ] || python3 scripts/train_default.py finalize --which stage1 --work $W >> $W/stage1.log 2>&1
echo "stage1 done at $(el) s" >> $W/pipeline.log
[ -n "$STAGE1_ONLY" ] && { touch $W/all.done; exit 0; }
python3 scripts/train_default.py stage2 --work $W --corpus $S/corpus --max-seconds ${STAGE2_S:-330} --set \
  progress=false summary_readout=affine max_steps=${STAGE2_STEPS:-130} warmup_steps=15 batch_size=4 \
  eval_every=1000 save_every=40 max_valid_sequences=16 2>&1 | grep -v -i warn > $W/stage2.log
[ -d $W/stage2/final ] || python3 scripts/train_default.py finalize --which stage2 --work $W >> $W/stage2.log 2>&1
python3 scripts/train_default.py export --work $W >> $W/pipeline.log 2>&1
echo "stage2 done at $(el) s" >> $W/pipeline.log
python3 scripts/train_default.py eval --work $W --corpus $S/corpus "${EMB[@]}" \
  --models stage2 stage1 base --ppl-windows 120 --ppl-per-source 24 2>&1 | grep -v -i warn > $W/eval.log
echo "eval done at $(el) s" >> $W/pipeline.log
touch $W/all.done
