#!/usr/bin/env bash
# Creates .venv (Python 3.11+) and installs the project with the pinned versions of constraints.txt.
# Sourced by demo.sh and test.sh, so a fresh clone needs nothing but Python and pip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Install only when pyproject.toml or constraints.txt changed since the last install (a stamp of
# both in .venv), and keep pip's and setuptools' output in a log shown only if it fails: a second
# run on a set-up machine starts without install noise.
STAMP=".venv/.install-stamp"
WANT="$(cat pyproject.toml constraints.txt | sha256sum)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
echo "installing the project into .venv (pinned versions; log: .venv/install.log)" >&2
exec 3>&1 4>&2 >.venv/install.log 2>&1
trap 'exec 1>&3 2>&4; cat .venv/install.log >&2; echo "install failed (log above)" >&2' ERR
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -c constraints.txt -e ".[dev,postgres]"
exec 1>&3 2>&4 3>&- 4>&-
trap - ERR
echo "$WANT" >"$STAMP"
fi
export PATH="$PWD/.venv/bin:$PATH"
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
mkdir -p "$DAGSTER_HOME"
