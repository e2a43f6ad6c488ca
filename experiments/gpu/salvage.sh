# Return every training stage that is still running as an adapter, so that a run whose machine is lost
# mid-way (the machine goes back 30 s after a call; one late call loses it and all of /root/stash) still
# leaves adapters to evaluate on CPU and to continue from (init_adapter=..., with a fresh optimiser).
# Called by watch_v1.sh at the end of every watch. For each <stage>/checkpoints/latest under work/ whose
# stage has no final adapter yet, it finalizes a private copy of that checkpoint (train_default.py
# finalize --out) and writes $OUT/salvage-<stage>-<step>.tar holding final/. A stage with its final
# adapter is skipped: watch_v1.sh returns the final itself.
source experiments/gpu/env.sh
W=$S/work
for pointer in $(find $W -maxdepth 4 -path '*/checkpoints/latest' 2>/dev/null | sort); do
  stage=$(dirname "$(dirname $pointer)")
  [ -d $stage/final ] && continue
  step=$(cat $pointer); name=$(realpath --relative-to=$W $stage | tr / -)
  T=$S/salvage/$name; rm -rf $T; mkdir -p $T/run/checkpoints
  # a private copy first: the trainer keeps only its last two checkpoints and may delete this one meanwhile
  if ! cp -r $stage/checkpoints/$step $T/run/checkpoints/ 2>/dev/null; then
    echo "salvage: $name/$step went away while it was copied; skipped"; continue
  fi
  echo $step > $T/run/checkpoints/latest
  python3 scripts/train_default.py finalize --work $T --which run --out $T/out/final 2>&1 | grep -v -i warn | tail -1
  [ -f $T/out/final/adapter_model.safetensors ] && tar -C $T/out -cf $OUT/salvage-$name-$step.tar final
done
true
