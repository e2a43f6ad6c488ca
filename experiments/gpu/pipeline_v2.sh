# Default model v2: the v1 recipe with the LR decay run over the wall-clock budget (time_schedule), in two
# phases so each fits one machine (a machine goes back 30 minutes after it was started):
#   PHASE=stage1  stage 1 from the base (affine readout from step 0, 25 % repeat rows) for STAGE1_S seconds,
#                 on the whole corpus if stash_stage1.sh parked it (v2 read .gpuA's subset and over-fitted)
#   PHASE=stage2  (after stash_stage1.sh parked phase 1's adapter as work/stage1a and the whole corpus)
#                 stage 1 continued from work/stage1a on the whole corpus for STAGE1B_S seconds (0: skip,
#                 phase 1's adapter is then stage 1), stage 2 for STAGE2_S seconds, export, then the PPL/QA
#                 evaluation of stage 2, stage 1 and the base
#   PHASE=stage1more  (after stash_stage1.sh parked a stage-1 adapter as work/stage1a and the whole corpus)
#                 stage 1 continued from it on the whole corpus for STAGE1B_S seconds (lr 4e-4, validation
#                 every 300 steps), then the PPL table of the continued adapter and of work/stage1a; as a
#                 variant (stage1more@A+stage1more@B) it adds $EXTRA_NAME to its --set overrides, e.g.
#                 EXTRA_B="distill_weight=1.0"
#   PHASE=ablate  (after stash_stage1.sh parked the whole corpus) two stage-1 variants from the base at once,
#                 one per GPU, for ABLATE_S seconds each: the phase-1 recipe plus the --set overrides in
#                 ABLATE_A and ABLATE_B (e.g. ABLATE_A="" ABLATE_B="summary_length=100"), then the PPL table
#                 of each; equal GPUs and equal wall time make the two gains kept comparable
#   PHASE=stage2more  (after stash_stage1.sh parked a stage-2 adapter as work/stage2a) stage 2 continued
#                 from it for STAGE2_S seconds (fresh optimiser, lr 2e-4, other QA batches), export, eval
#   PHASE=A+B     (e.g. ablate+stage2more, on a 4-GPU machine after stash_stage1.sh parked the corpus and a
#                 stage-2 adapter) the phases at once, each on its own equal share of the GPUs (GPUs 0,1 run
#                 A and GPUs 2,3 run B); they share work/ (their files do not collide) and all.done waits
#                 for both. A part written PHASE@NAME (e.g. stage2more@A+stage2more@B) is a variant: it runs
#                 in work/NAME (work/stage1a and work/stage2a linked in), adds the --set overrides of $EXTRA_NAME
#                 to its stage-2 jobs, and does not export (two variants would write the same package folder)
# Training runs data-parallel over all the machine's GPUs (env.sh: TRAIN is torchrun when there are
# several), so a 2-GPU machine doubles the global batch in the same time; evaluation uses one GPU.
# STAGE1_EXTRA: more key=value overrides for PHASE=stage2's stage-1 continuation, e.g. STAGE1_EXTRA=distill_weight=1.0
# STAGE2_EXTRA: more key=value overrides for both stage-2 jobs, without spaces inside a value, e.g.
#   STAGE2_EXTRA='qa_kind_weights={"year":3,"number":3} repeat_fraction=0.25'
# With stash_extra.sh's blank-QA set parked,
#   STAGE2_EXTRA='qa_data=["/root/stash/work/synthqa-train","/root/stash/blankqa"]' mixes it into stage 2 (the synthetic set is written to work/synthqa-train before the overrides apply);
#   with its ood/ sets parked, stage2more also scores both adapters on them through the product (ood_eval;
#   a set parked there that is not out of distribution, e.g. the synthetic test split, is scored the same way).
# QA_ENTITIES: how many synthetic entities stage 2's QA set draws its questions from (default 2,000,
#   about 4,000 questions; v5's 611 steps read them about five times)

cd ${S:-/root/stash}/repo && source experiments/gpu/env.sh  # S: tests run it elsewhere
W=${WORK:-$S/work}; mkdir -p $W   # WORK: a variant's own folder (PHASE@NAME below)
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
if [[ "$PHASE" == *+* ]]; then  # a combined phase: one sub-pipeline per part, on its own GPUs
  IFS=+ read -ra PARTS <<< "$PHASE"
  PER=$(( NGPU / ${#PARTS[@]} )); [ $PER -ge 1 ] || PER=1
  for i in "${!PARTS[@]}"; do
    FIRST=$(( NGPU > 1 ? (i * PER) % NGPU : 0 ))
    DEVS=$(seq -s, $FIRST $(( FIRST + PER - 1 )))
    P=${PARTS[$i]}; V=""; [[ "$P" == *@* ]] && V=${P#*@}
    if [ -n "$V" ]; then  # a variant: its own work folder, sharing the parked adapters
      mkdir -p $W/$V; for d in stage1a stage2a; do [ -d $W/$d ] && ln -sfn $W/$d $W/$V/$d; done
    fi
    echo "phase $P on GPUs $DEVS" >> $W/pipeline.log
    CUDA_VISIBLE_DEVICES=$DEVS PHASE=${P%@*} VARIANT=$V WORK=${V:+$W/$V} SUBPHASE=1 \
      bash experiments/gpu/pipeline_v2.sh > $S/pipeline-$P.out 2>&1 &
  done
  wait
  echo "all phases done at $(el) s" >> $W/pipeline.log
  touch $W/all.done
  exit 0
fi
# gpu N: the device id that CUDA_VISIBLE_DEVICES=... must name for the N-th GPU this pipeline may use
gpu() { local l=(${CUDA_VISIBLE_DEVICES//,/ }); echo ${l[$1]:-$1}; }
echo "GPUs: $NGPU; training with: $TRAIN" >> $W/pipeline.log
# fit SECONDS: the training budget, cut so that the job (with RESERVE_S, default 300 s, for QA-set generation, evaluation, export
# and the last watch's copy) ends before DEADLINE, the epoch second at which the machine goes back
# (launch_v1.sh sets it from LEASE_LEFT); never below 60 s
fit() {
  local s=$1 left
  if [ -n "$DEADLINE" ]; then
    left=$(( DEADLINE - $(date +%s) - ${RESERVE_S:-300} ))
    if [ $left -lt $s ]; then
      s=$(( left > 60 ? left : 60 ))
      echo "budget ${1} s cut to $s s: the machine goes back in $(( DEADLINE - $(date +%s) )) s" >> $W/pipeline.log
    fi
  fi
  echo $s
}
VEXTRA=""; [ -n "$VARIANT" ] && { x=EXTRA_$VARIANT; VEXTRA=${!x}; }   # a variant's own overrides
finalize() { [ -d $W/$1/final ] || python3 scripts/train_default.py finalize --which $1 --work $W >> $W/$1.log 2>&1; }
# every stage-1 job: affine readout, 25 % repeat rows, the LR decay run over the time budget
STAGE1_RECIPE="progress=false summary_readout=affine repeat_fraction=0.25 time_schedule=true save_every=100 max_valid_sequences=32"
# continue_stage1 SECONDS LOG KEY=VALUE...: stage 1 continued from work/stage1a on the whole corpus, finalized
continue_stage1() {
  $TRAIN scripts/train_default.py stage1 --work $W --corpus $S/full/corpus --max-seconds $1 --set $STAGE1_RECIPE \
    learning_rate=4e-4 init_adapter=$W/stage1a/final max_steps=4000 warmup_steps=20 "${@:3}" 2>&1 \
    | grep -v -i warn > $W/$2
  finalize stage1
}
if [ "${PHASE:-stage1}" = stage1 ]; then
  C=$S/full/corpus; [ -d $C ] || C=$S/corpus   # the whole corpus when stash_stage1.sh parked it
  $TRAIN scripts/train_default.py stage1 --work $W --corpus $C --max-seconds $(fit ${STAGE1_S:-1400}) --set \
    $STAGE1_RECIPE learning_rate=8e-4 max_steps=${STAGE1_STEPS:-4000} warmup_steps=${STAGE1_WARMUP:-60} \
    eval_every=${STAGE1_EVAL:-400} 2>&1 | grep -v -i warn > $W/stage1.log
  finalize stage1
  echo "stage1 done at $(el) s" >> $W/pipeline.log
elif [ "$PHASE" = stage1more ]; then
  C=$S/full/corpus
  continue_stage1 $(fit ${STAGE1B_S:-1200}) stage1.log eval_every=300 seed=4 $VEXTRA
  echo "stage1 (continued) done at $(el) s" >> $W/pipeline.log
  python3 scripts/train_default.py eval --work $W --corpus $C --models stage1 stage1a --tables ppl \
    --ppl-windows 120 --ppl-per-source 24 2>&1 | grep -v -i warn > $W/eval.log
  echo "eval done at $(el) s" >> $W/pipeline.log
elif [ "$PHASE" = ablate ]; then
  C=$S/full/corpus
  variant() {  # variant NAME GPU OVERRIDES...: one stage-1 job on one GPU, finalized, then its PPL table
    local V=$W/ablate-$1; mkdir -p $V
    CUDA_VISIBLE_DEVICES=$2 python3 scripts/train_default.py stage1 --work $V --corpus $C \
      --max-seconds $(fit ${ABLATE_S:-1200}) --set $STAGE1_RECIPE learning_rate=8e-4 max_steps=4000 warmup_steps=60 \
      eval_every=400 "${@:3}" 2>&1 | grep -v -i warn > $W/ablate-$1.log
    [ -d $V/stage1/final ] || python3 scripts/train_default.py finalize --which stage1 --work $V >> $W/ablate-$1.log 2>&1
    CUDA_VISIBLE_DEVICES=$2 python3 scripts/train_default.py eval --work $V --corpus $C --models stage1 \
      --tables ppl --ppl-windows 120 --ppl-per-source 24 2>&1 | grep -v -i warn >> $W/ablate-$1.log
  }
  variant A $(gpu 0) $ABLATE_A & variant B $(gpu $(( NGPU > 1 ? 1 : 0 ))) $ABLATE_B &
  wait
  echo "ablation done at $(el) s" >> $W/pipeline.log
else
  C=$S/full/corpus
  # stage2 SECONDS KEY=VALUE...: stage 2 from the stage-1 adapter (or init_adapter=...), then its final adapter
  stage2() {
    $TRAIN scripts/train_default.py stage2 --work $W --corpus $C --qa-entities ${QA_ENTITIES:-2000} --max-seconds $(fit $1) --set progress=false \
      summary_readout=affine time_schedule=true batch_size=4 eval_every=0 "${@:2}" $STAGE2_EXTRA $VEXTRA 2>&1 \
      | grep -v -i warn > $W/stage2.log
    finalize stage2
    [ -n "$VARIANT" ] || python3 scripts/train_default.py export --work $W >> $W/pipeline.log 2>&1
  }
  ood_eval() {  # the out-of-distribution QA sets through the product (issue 27), if stash_extra.sh parked them
    [ -d $S/ood ] || return 0
    mkdir -p $W/eval
    for m in "$@"; do
      for set in $S/ood/*/; do
        n=$(basename $set)
        python3 -m ragcompress eval qa $set/corpus $set/questions.jsonl --model $W/$m/final --index $W/index-$m-$n \
          --k 5 --modes none,fused,fused-extractive,hybrid,text --batch-size 32 --device cuda "${EMB[@]}" \
          --out $W/eval/ood-$m-$n.json 2>&1 | grep -v -i warn >> $W/eval-ood.log
      done
    done
    echo "ood eval done at $(el) s" >> $W/pipeline.log
  }
  evaluate() {  # the PPL and QA tables of the named models (QA through an index of the test split)
    python3 scripts/train_default.py eval --work $W --corpus $C "${EMB[@]}" \
      --models "$@" --ppl-windows 120 --ppl-per-source 24 2>&1 | grep -v -i warn > $W/eval.log
    echo "eval done at $(el) s" >> $W/pipeline.log
  }
  if [ "$PHASE" = stage2more ]; then
    stage2 ${STAGE2_S:-300} max_steps=2000 warmup_steps=10 learning_rate=2e-4 summary_learning_rate=3e-4 seed=3 \
      init_adapter=$W/stage2a/final save_every=20
    echo "stage2 (continued) done at $(el) s" >> $W/pipeline.log
    evaluate stage2 stage2a  # the new adapter and the one it continued, on the same GPU
    ood_eval stage2 stage2a
  else
    if [ "${STAGE1B_S:-0}" -gt 0 ]; then
      continue_stage1 $STAGE1B_S stage1b.log eval_every=0 seed=2 $STAGE1_EXTRA
    else
      mkdir -p $W/stage1 && cp -r $W/stage1a/final $W/stage1/
    fi
    echo "stage1 (continued) done at $(el) s" >> $W/pipeline.log
    stage2 ${STAGE2_S:-480} max_steps=${STAGE2_STEPS:-2000} warmup_steps=20 save_every=40 max_valid_sequences=16
    echo "stage2 done at $(el) s" >> $W/pipeline.log
    evaluate ${EVAL_MODELS:-stage2 stage1 base}  # EVAL_MODELS=stage2 when stage 1 was measured already
  fi
fi
[ -n "$SUBPHASE" ] || touch $W/all.done  # a combined phase touches it when all its parts are done
