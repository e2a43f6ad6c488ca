# Later calls of the v1 run: wait (at most $1 seconds) while the background pipeline works, then copy
# what it has so far to $OUT (logs, metrics, adapters, evaluation JSON, and salvage.sh's adapters of the
# stages still training). On a fresh machine (the job's went back) it stops at once with exit code 3.
S=${S:-/root/stash}; W=$S/work; END=$(( $(date +%s) + ${1:-560} ))
if [ ! -d $W ]; then  # a fresh machine: the one running the job went back, and its work with it
  echo "watch_v1.sh: $W does not exist: this is a fresh machine (the job's went back after 30 s idle), so the run is lost; give the machine back and start again from stash_a2.sh" >&2
  exit 3
fi
while [ $(date +%s) -lt $END ] && [ ! -f $W/all.done ]; do sleep 10; done
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv,noheader
cat $W/pipeline.log 2>/dev/null; tail -c 1500 $S/pipeline.out 2>/dev/null
tail -c 400 $S/pipeline-*.out 2>/dev/null
for f in $W/stage1.log $W/stage2.log $W/eval.log $W/ablate-A.log $W/ablate-B.log $W/*/stage2.log $W/*/eval.log; do [ -f $f ] && { echo "== $f"; tail -n 25 $f; }; done
(cd $W && tar --exclude="eval/index-*" --exclude="*/eval/index-*" -cf $OUT/results.tar $(ls -d *.log stage*/metrics.jsonl stage*/config.json eval ablate-*/stage1/metrics.jsonl ablate-*/stage1/config.json ablate-*/eval */*.log */stage2/metrics.jsonl */stage2/config.json */stage1/metrics.jsonl */stage1/config.json */eval 2>/dev/null)) || true
for s in stage1 stage2; do [ -d $W/$s/final ] && tar -C $W/$s -cf $OUT/$s-final.tar final; done
for v in A B; do [ -d $W/ablate-$v/stage1/final ] && tar -C $W/ablate-$v/stage1 -cf $OUT/ablate-$v-final.tar final; done
for s in stage1 stage2; do  # variants
  for d in $W/*/$s; do [ -d $d/final ] && [[ $d != $W/ablate-* ]] && tar -C $d -cf $OUT/$(basename $(dirname $d))-$s-final.tar final; done
done
[ -d $W/stage2/final ] && [ -f $S/repo/ragcompress/default_adapter/ragcompress.json ] && tar -C $S/repo/ragcompress -cf $OUT/default_adapter.tar default_adapter
bash experiments/gpu/salvage.sh  # the stages still training, as adapters, in case this machine is lost
ls $W
true
