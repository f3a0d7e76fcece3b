#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the project (with the postgres extra),
# Debian's Chromium for the UI test and PostgreSQL for the PostgreSQL tests, then lint and pytest.
# Arguments go to pytest. Nothing needs to be running: the tests start their own PostgreSQL
# server (initdb into a tmp dir, 127.0.0.1 and a free port only) and remove it at the end,
# whatever the outcome (fulfillment_assets_tests/postgres_server.py).
# The fast lane for the edit loop is `bash scripts/test.sh -m "not slow"` (DuckDB only; no served
# Dagster, browser, PostgreSQL, killed or concurrent runs; ~6 min on 2 cores); CI runs the whole
# suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
missing=()
# The UI test drives Debian's Chromium: a browser download of Playwright's own is not possible.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Debian keeps the server binaries off PATH, under /usr/lib/postgresql/N/bin.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null \
    || echo "warning: could not install ${missing[*]}; the tests that need them will fail and say so" >&2
fi
ruff check .
ruff format --check .
# Every distribution the code imports is declared in pyproject.toml ([tool.deptry] says how).
deptry .
# The layers import one way only, and the source without Dagster ([tool.importlinter]).
lint-imports
# dg reads [tool.dg] in pyproject.toml; VIRTUAL_ENV tells it the project's .venv is the active one.
VIRTUAL_ENV="$PWD/.venv" dg check defs
# The type checker: [tool.mypy] in pyproject.toml says what it checks.
mypy
exec python -m pytest "$@"
