#!/usr/bin/env bash
# Set up (idempotent), index a small demo corpus with the embedded default models, and ask questions
# in fused (summary vectors) and text (plain passages) mode, side by side, then one with --extractive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
INDEX=${INDEX:-$(mktemp -d)/demo-index}
.venv/bin/ragcompress index examples/demo/corpus --index "$INDEX"
.venv/bin/ragcompress info "$INDEX"
mapfile -t QUESTIONS < <(.venv/bin/python -c "import json
from ragcompress.eval.qa_metrics import answer_kind
every = [json.loads(line) for line in open('examples/demo/questions.jsonl')]
for kind in ('name', 'number', 'year', 'word'):  # one question of each kind of answer
    print(next(q['question'] for q in every if answer_kind(q['answers']) == kind))")
for question in "${QUESTIONS[@]}"; do
  for mode in fused text; do
    echo "── [$mode] $question"
    .venv/bin/ragcompress ask "$question" --index "$INDEX" --k 3 --mode "$mode"
  done
done
# names are what summary vectors blur most; --extractive copies the answer from the passages' text
echo "── [fused --extractive] ${QUESTIONS[0]}"
.venv/bin/ragcompress ask "${QUESTIONS[0]}" --index "$INDEX" --k 3 --mode fused --extractive
echo "demo index: $INDEX (expected answers: examples/demo/questions.jsonl)"
