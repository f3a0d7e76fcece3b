#!/usr/bin/env bash
# Creates .venv (Python 3.11+) and installs the project with the pinned versions of constraints.txt.
# Sourced by demo.sh and test.sh, so a fresh clone needs nothing but Python and pip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -c constraints.txt -e ".[dev,postgres]"
export PATH="$PWD/.venv/bin:$PATH"
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
mkdir -p "$DAGSTER_HOME"
