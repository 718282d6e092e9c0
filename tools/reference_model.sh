#!/usr/bin/env bash
# The reference model end to end, with the project's own commands:
#   corpus -> training -> export (bfloat16 variables) -> evaluation.
#
#   bash tools/reference_model.sh [OUT]      (OUT defaults to exports/reference)
#
# On a 2-core CPU: corpus ~25 min (24,000 WordNet sentences, 480 generated
# speakers), training ~3 h alone on the machine (6,000 steps at 1.5-1.9 s),
# export under 1, evaluation ~25. Writes the corpus
# to data/corpus, the run to runs/reference, the SavedModel to OUT/soundstorm/<version>
# and the evaluation report to reports/eval-reference; none of them is tracked by git.
# This is the recipe of the committed reference model, models/soundstorm/2 (MODEL_CARD.md).
#
# Resumable: re-running skips the corpus shards already on disk and resumes training
# from the run's latest checkpoint (every 250 steps), so a stopped run loses at most
# 250 steps. STEPS overrides the schedule's length for a longer run in a new WORKDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-exports/reference}"
steps="${STEPS:-6000}"
workdir="${WORKDIR:-runs/reference-6k}"
soundstorm=.venv/bin/soundstorm
[ -x "$soundstorm" ] || bash tools/setup.sh

# Defaults are the recipe: WordNet text (open vocabulary), 480 + 24 generated
# speakers with 6 held-out variants, Lyra's 16 levels in pairs (docs/data.md, docs/codec.md).
"$soundstorm" data build --out data/corpus
# `compact` preset (4.7M parameters); level 1 (the words) drawn 3x, level 2 2x as often
# as each finer level (docs/training.md says why).
"$soundstorm" train --preset compact --data data/corpus --workdir "$workdir" \
  --steps "$steps" --warmup-steps 100 --batch-size 8 --seconds 4 --learning-rate 2e-3 \
  --level-weights 3 2 1 1 1 1 1 1 --checkpoint-every 250
"$soundstorm" export --workdir "$workdir" --base-path "$out" --variables-dtype bfloat16
"$soundstorm" eval --model "$out/soundstorm" --data data/corpus --out reports/eval-reference \
  --utterances 48 --long-form-seconds 30
