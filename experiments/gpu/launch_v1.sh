# Call 2 of the v1 run: join the GGUF, install the missing wheels, convert the base once, copy the repo
# outside the working tree and start experiments/gpu/$PIPELINE (default pipeline_v1.sh) as its own session;
# then watch it.
set -e
source experiments/gpu/env.sh
source experiments/gpu/join_base.sh
[ -n "$BENCH" ] && python3 benchmarks/train_throughput.py --out $OUT/train_throughput.json 2>&1 | grep -v -i warn | tail -6
# LEASE_LEFT: seconds this machine has left (1800 minus the last reply's lease.held_s, or budget_left_s if
# smaller); the pipeline then cuts its training budgets so the job ends in time (pipeline_v2.sh, fit)
[ -n "$LEASE_LEFT" ] && export DEADLINE=$(( $(date +%s) + LEASE_LEFT - ${SECONDS:-0} ))
mkdir -p $S/repo/experiments && cp -r ragcompress indexing ragcompress_tools scripts configs benchmarks $S/repo/ && cp -r experiments/gpu $S/repo/experiments/
(cd $S/repo && export PHASE STAGE1_ONLY STAGE1_S STAGE1B_S STAGE1_STEPS STAGE1_WARMUP STAGE1_EVAL STAGE2_S STAGE2_STEPS STAGE1_EXTRA STAGE2_EXTRA QA_ENTITIES EVAL_MODELS ABLATE_S ABLATE_A ABLATE_B EXTRA_A EXTRA_B DEADLINE RESERVE_S && setsid nohup bash experiments/gpu/${PIPELINE:-pipeline_v1.sh} > $S/pipeline.out 2>&1 < /dev/null &)
sleep 5
bash experiments/gpu/watch_v1.sh ${1:-520}
