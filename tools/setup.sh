#!/usr/bin/env bash
# Sets a fresh machine up: espeak-ng and wordnet-base (Debian packages; the speech and
# the text of the corpus, and voice prompts) and a virtual environment in .venv holding the
# project (editable) and its test tools. Safe to re-run; it only installs what
# is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: espeak-ng (speech), wordnet-base (WordNet 3.0's example
# sentences, the open-vocabulary training text; docs/data.md) and libjemalloc2 (the
# malloc a long-running `soundstorm serve` should run on; docs/serving.md, Memory).
missing=()
ldconfig -p | grep -q "libespeak-ng.so.1 " || missing+=(espeak-ng)
[ -f /usr/share/wordnet/data.noun ] || missing+=(wordnet-base)
ldconfig -p | grep -q "libjemalloc.so.2 " || missing+=(libjemalloc2)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "${missing[*]} missing: run 'sudo apt-get install ${missing[*]}' and re-run this script" >&2
    exit 1
  fi
fi

# buildifier (Bazel's BUILD formatter and linter; tests/test_build.py runs it) ships on npm,
# not PyPI. Best effort: without it that one check is skipped (and says so), nothing fails.
install_buildifier() {
  if ! command -v npm >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "installing npm (apt-get), for buildifier"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  command -v npm >/dev/null && echo "installing buildifier (npm)" &&
    npm install -g --silent @bazel/buildifier@8.2.1 >/dev/null
}
if ! command -v buildifier >/dev/null; then
  install_buildifier || echo "buildifier could not be installed; its BUILD check will be skipped"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# compat: the editable install is a .pth naming the checkout, not an import hook, so a copy
# of the tree put first on PYTHONPATH (tools/mutation_score.py's mutants) is what imports.
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  --config-settings editable_mode=compat -e ".[train,test,eval,mutation]"

# The deviceless TPU compile check (tools/tpu_compile_check.py) needs libtpu, the TPU
# compiler jax pins in its `tpu` extra; the converter-options test needs the converter's
# schema, which orbax-export ships. Both go to .tpu-check/, not .venv: with libtpu importable,
# every JAX program would probe for a TPU at start-up (and say so on stderr).
tpu_check_packages=$(.venv/bin/python - <<'PY'
import tomllib
print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["tpu-check"]))
PY
)
if [ ! -d .tpu-check/libtpu ] || [ ! -d .tpu-check/orbax ]; then
  echo "installing ${tpu_check_packages} into .tpu-check/"
  # shellcheck disable=SC2086  # the list is meant to split into arguments
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    --target .tpu-check ${tpu_check_packages}
fi
