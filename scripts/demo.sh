#!/usr/bin/env bash
# The main job on one machine: starts the bundled demo API on loopback, materializes every asset
# into DuckDB (data/warehouse.duckdb), stops the API and prints a summary. Arguments go to the job
# (e.g. --records 100000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec python -m fulfillment_assets.demo.job "$@"
