#!/usr/bin/env bash
# The test command: set up (if needed), then run the whole suite.
# Extra arguments go to pytest (e.g. `bash tools/test.sh -k decoding`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
exec .venv/bin/python -m pytest -q "$@"
