#!/usr/bin/env bash
# Sets a fresh machine up: a virtual environment in .venv holding the project
# (editable) and its test tools. Safe to re-run; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
