#!/usr/bin/env bash
# The accelerator benchmark in one command (apps/bench/gpu.py says what it measures):
#
#   benchmarks/gpu.sh                      # the paper preset, 30 s, batch 1/4/16, fp32 and bf16
#   benchmarks/gpu.sh --preset tiny --batches 1 --matmul-sizes 256   # a CPU try-out
#
# Made for a GPU machine with JAX (CUDA), flax and PyTorch but no TensorFlow and no
# network (the lent H200, docs/benchmarks.md). Everything it needs travels as files:
#   .gpu/modules  the SavedModel's modules and parameters:
#                 python -m soundstorm.export.extract models/soundstorm/4 .gpu/modules \
#                     --signatures serving_default
#   .whl/         wheels of the peer (soundstorm-pytorch 0.6.1 and what it needs beyond the
#                 machine's packages: beartype, hyper-connections, torch-einops-utils),
#                 installed into a temporary folder, never into the machine's Python.
# Figures are printed as they come and written to $OUT/gpu.json (or ./gpu.json).
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
  site=$(mktemp -d)
  ${PYTHON:-python3} -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --target "$site" .whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
modules=()
if [ -f .gpu/modules/manifest.json ]; then modules=(--modules .gpu/modules); fi
# JAX would otherwise take 75% of the GPU up front, leaving PyTorch (the peer) too little.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.6}
PYTHONUNBUFFERED=1 exec "${PYTHON:-python3}" -m soundstorm.apps.bench.gpu "${modules[@]}" \
  --out "${OUT:-.}/gpu.json" "$@"
