#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the project, Chromium for the UI test, then
# lint and pytest. Arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
if ! command -v chromium >/dev/null 2>&1; then
  # The UI test drives Debian's Chromium: a browser download of Playwright's own is not possible.
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null \
    || echo "warning: could not install chromium; the browser test will fail and say so" >&2
fi
ruff check .
ruff format --check .
# dg reads [tool.dg] in pyproject.toml; VIRTUAL_ENV tells it the project's .venv is the active one.
VIRTUAL_ENV="$PWD/.venv" dg check defs
exec python -m pytest "$@"
