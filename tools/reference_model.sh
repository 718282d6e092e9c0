#!/usr/bin/env bash
# Reproduces the committed reference model end to end, with the project's own commands:
#   corpus -> training -> export (bfloat16 variables) -> evaluation.
#
#   bash tools/reference_model.sh [OUT]      (OUT defaults to exports/reference)
#
# About 80 minutes on a 2-core CPU: corpus ~4, training ~67, export under 1, evaluation ~7. Writes the corpus to
# data/corpus, the run to runs/reference, the SavedModel to OUT/soundstorm/<version>
# and the evaluation report to reports/eval-reference; none of them is tracked by git.
# The committed copy is models/soundstorm/1 (MODEL_CARD.md gives its figures).
# Re-running resumes: an existing corpus is kept and training resumes from its last
# checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-exports/reference}"
soundstorm=.venv/bin/soundstorm
[ -x "$soundstorm" ] || bash tools/setup.sh

# 16 training + 4 held-out espeak-ng speakers x 400 training + 24 held-out sentences.
if [ ! -f data/corpus/manifest.json ]; then
  "$soundstorm" data build --out data/corpus --sentences 400 --speakers 16
fi
# `small` preset, 2250 steps of 8 x 4 s: what fits an hour on 2 cores (MODEL_CARD.md).
"$soundstorm" train --preset small --data data/corpus --workdir runs/reference \
  --steps 2250 --batch-size 8 --seconds 4 --learning-rate 1.5e-3 \
  --level-weights 2 1 1 1 1 1 1 1 --checkpoint-every 250
"$soundstorm" export --workdir runs/reference --base-path "$out" \
  --variables-dtype bfloat16
"$soundstorm" eval --model "$out/soundstorm" --data data/corpus --out reports/eval-reference \
  --utterances 24 --long-form-seconds 60
