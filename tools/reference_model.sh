#!/usr/bin/env bash
# The reference model end to end, with the project's own commands:
#   corpus -> training -> export (bfloat16 variables) -> evaluation.
#
#   bash tools/reference_model.sh [OUT]      (OUT defaults to exports/reference)
#
# On a 2-core CPU: corpus ~25 min (24,000 WordNet sentences, 480 generated
# speakers), training ~4.5 h alone on the machine (8,500 steps at 1.5-1.9 s),
# export under 1, evaluation ~35. Writes the corpus to data/corpus, the runs to
# runs/reference-6k and runs/reference-8500, the SavedModel to OUT/soundstorm/4 and the
# evaluation report to reports/eval-reference; none of them is tracked by git.
# This is the recipe of the committed reference model, models/soundstorm/4 (MODEL_CARD.md):
# 6,000 steps on a 6,000-step cosine, then that state (optimizer included) continued to
# 8,500 on an 8,500-step cosine, a warm restart (docs/training.md says why).
#
# Resumable: re-running skips the corpus shards already on disk and resumes training
# from the stage's latest checkpoint (every 250 steps), so a stopped run loses at most
# 250 steps.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-exports/reference}"
first=runs/reference-6k
second=runs/reference-8500
soundstorm=.venv/bin/soundstorm
[ -x "$soundstorm" ] || bash tools/setup.sh

# Defaults are the recipe: WordNet text (open vocabulary), 480 + 24 generated
# speakers with 6 held-out variants, Lyra's 16 levels in pairs (docs/data.md, docs/codec.md).
"$soundstorm" data build --out data/corpus
# `compact` preset (4.7M parameters); level 1 (the words) drawn 3x, level 2 2x as often
# as each finer level (docs/training.md says why).
train() {
  "$soundstorm" train --preset compact --data data/corpus --workdir "$1" --steps "$2" \
    --warmup-steps 100 --batch-size 8 --seconds 4 --learning-rate 2e-3 \
    --level-weights 3 2 1 1 1 1 1 1 --checkpoint-every 250
}
train "$first" 6000
# The second stage starts as a copy of the first's step-6,000 state, without its
# config.json, so that `train` takes the new schedule's length.
if [ ! -d "$second/checkpoints" ]; then
  mkdir -p "$second/checkpoints"
  cp -r "$first/checkpoints/6000" "$second/checkpoints/"
  cp "$first/data.json" "$first/metrics.jsonl" "$second/"
fi
train "$second" 8500
# The choice temperature 2.0 was chosen on held-out utterances the evaluation does not use.
"$soundstorm" export --workdir "$second" --base-path "$out" --version 4 \
  --variables-dtype bfloat16 --default-choice-temperature 2 --static-buckets
"$soundstorm" eval --model "$out/soundstorm" --data data/corpus --out reports/eval-reference \
  --utterances 48 --long-form-seconds 30
