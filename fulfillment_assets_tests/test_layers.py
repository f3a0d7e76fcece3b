"""Importing a quality helper or a model module builds no dlt pipeline (issue 19).

The raw asset's decorator builds the dlt source and a pipeline when `ingest/assets.py` is imported;
the asset keys the checks name live in `contract.py` and the raw columns the models describe in
`ingest/columns.py`, so neither the checks nor the models import it. Each import
runs in a fresh interpreter: this test process has imported the whole code location already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fulfillment_assets_tests.served.cli import REPO_ROOT, subprocess_environment

# Imports the contract and every module of `quality/` and `models/`, and prints what was loaded.
IMPORT_QUALITY_AND_MODELS = """
import importlib, json, pkgutil, sys

import fulfillment_assets.contract
import fulfillment_assets.models as models
import fulfillment_assets.quality as quality
imported = [
    importlib.import_module(f"{package.__name__}.{module.name}").__name__
    for package in (quality, models)
    for module in pkgutil.iter_modules(package.__path__)
]
print(json.dumps({
    "imported": imported,
    "loaded": sorted(name for name in sys.modules if name.startswith("fulfillment_assets.")),
}))
"""


def test_importing_the_checks_models_and_contract_builds_no_pipeline(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", IMPORT_QUALITY_AND_MODELS],
        cwd=REPO_ROOT,
        env=subprocess_environment({"FULFILLMENT_DATA_DIR": str(tmp_path / "data")}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout.splitlines()[-1])
    assert "fulfillment_assets.quality.check_results" in report["imported"]
    assert "fulfillment_assets.quality.checks" in report["imported"]
    assert "fulfillment_assets.models.columns" in report["imported"]
    assert "fulfillment_assets.models.assets" in report["imported"]
    # The raw asset's module (whose decorator builds the dlt source and pipeline) never loads.
    assert "fulfillment_assets.ingest.assets" not in report["loaded"], report["loaded"]
    assert "fulfillment_assets.definitions" not in report["loaded"], report["loaded"]
