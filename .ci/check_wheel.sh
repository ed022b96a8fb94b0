#!/usr/bin/env bash
# The package as a user gets it: `python -m build` makes a wheel and an sdist; each installs into
# a fresh venv (torch pinned first, no system site-packages) and runs `seofp demo --help` and the
# one-minute `seofp demo --quick`, outside the checkout. Usage: .ci/check_wheel.sh [PYTHON]
# TORCH_INDEX_URL picks the torch build as in the Makefile (empty: the plain package index).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-${PYTHON:-.venv/bin/python}}
TORCH_ARGS=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then TORCH_ARGS=(--index-url "$TORCH_INDEX_URL"); fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/seofp-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SECONDS=0

"$PYTHON" -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
WHEEL=$(ls "$WORK"/dist/seofp_lab-*.whl)
SDIST=$(ls "$WORK"/dist/seofp_lab-*.tar.gz)
echo "built $(basename "$WHEEL") and $(basename "$SDIST") in ${SECONDS}s"

check() {  # check NAME ARTIFACT [--quick]: fresh venv, install, run from an empty folder
  local name=$1 artifact=$2 quick=${3:-}
  local venv="$WORK/venv-$name" ws="$WORK/ws-$name"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "${TORCH_ARGS[@]}" torch==2.13.0
  echo "torch==2.13.0" >"$venv/constraints.txt"
  "$venv/bin/python" -m pip install --quiet -c "$venv/constraints.txt" "$artifact"
  mkdir -p "$WORK/run-$name"
  ( cd "$WORK/run-$name"  # not the checkout: the installed package, not the source tree
    "$venv/bin/seofp" demo --help >/dev/null
    "$venv/bin/python" -c "import seofp_lab, sys; assert 'site-packages' in seofp_lab.__file__, seofp_lab.__file__"
    if [ -n "$quick" ]; then
      SEOFP_WORKSPACE="$ws" "$venv/bin/seofp" demo --quick --no-progress >"$WORK/demo-$name.log" 2>&1 \
        || { tail -60 "$WORK/demo-$name.log"; exit 1; }
      grep -q "registered seofp-demo-quick version 1" "$WORK/demo-$name.log" \
        || { tail -30 "$WORK/demo-$name.log"; echo "no registered model"; exit 1; }
    fi )
  echo "$name: installed in a fresh venv and ran seofp demo --help${quick:+ and seofp demo --quick} (${SECONDS}s)"
}

check wheel "$WHEEL" --quick
check sdist "$SDIST"
