# Every later call: carry on with whatever is left (stage 1 → stage 2 → eval → export → benchmark)
# within BUDGET seconds. Training stages pause with a checkpoint and resume on the next call.
set -e
source experiments/gpu/env.sh
BUDGET=${1:-540}
START=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
W=$S/work
for stage in stage1 stage2; do
  if [ ! -f $W/$stage.done ] && [ $(left) -gt 60 ]; then
    python3 scripts/train_default.py $stage --work $W --corpus $S/corpus --max-seconds $(( $(left) - 20 )) --set progress=false 2>&1 \
      | grep -v -i warn | tee -a $W/$stage.log | tail -4
    grep -q "finished in" $W/$stage.log && touch $W/$stage.done
  fi
done
if [ -f $W/stage2.done ] && [ ! -f $W/eval.done ] && [ $(left) -gt 300 ]; then
  python3 scripts/train_default.py eval --work $W --corpus $S/corpus "${EMB[@]}" \
    --ppl-windows 120 --ppl-per-source 24 2>&1 | grep -v -i warn | tee $W/eval.log | tail -40 && touch $W/eval.done
fi
if [ -f $W/eval.done ] && [ ! -f $W/bench.done ] && [ $(left) -gt 150 ]; then
  python3 benchmarks/train_throughput.py --out $W/train_throughput.json --profile 2>&1 | grep -v -i warn \
    | tee $W/bench.log | grep -E "^\{|profile" && touch $W/bench.done
fi
if [ -f $W/stage2.done ]; then
  python3 scripts/train_default.py export --work $W && tar -C ragcompress -cf $OUT/default_adapter.tar default_adapter
fi
[ -d $W/stage1/final ] && tar -C $W/stage1 -cf $OUT/stage1_adapter.tar final
cd $W && tar --exclude="eval/index-*" --exclude="*/eval/index-*" -cf $OUT/results.tar $(ls -d *.log *.json stage*/metrics.jsonl stage*/config.json eval 2>/dev/null) && ls $W
