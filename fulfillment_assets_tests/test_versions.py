"""Newest `updated_at` wins across loads: an API serving an older version of a record (a lagging
replica) never overwrites the newer version stored, and `updated_at_never_goes_back` warns naming
the ids. On DuckDB and on PostgreSQL, with the demo API's `data_version` / `duplicate_version`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dagster import AssetCheckSeverity, AssetSelection, DagsterInstance

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer
from fulfillment_assets_tests.helpers import (
    TEST_API_KEY,
    materialize_all,
    query,
    table_snapshot,
)

pytestmark = pytest.mark.every_destination

RECORDS = 300
# The raw table and its checks: the models only cost time here.
RAW_AND_CHECKS = AssetSelection.assets(["fulfillment", "fulfillment_data"])


def _load(demo_api: DemoApiServer, instance: DagsterInstance, **options: Any):
    demo_api.configure(DemoApiOptions(records=RECORDS, api_key=TEST_API_KEY, **options))
    result = materialize_all(instance, selection=RAW_AND_CHECKS)
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == "updated_at_never_goes_back"
    ]
    return evaluation


def _updated_at(data_dir: Path) -> dict[int, str]:
    rows = query(data_dir, "SELECT id, CAST(updated_at AS TEXT) FROM fulfillment.fulfillment_data")
    return {int(row_id): updated for row_id, updated in rows}


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_an_older_version_never_overwrites_a_newer_one_and_the_check_names_the_ids(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    first = _load(demo_api, instance, data_version=2)
    assert first.passed, first.description
    newest = table_snapshot(isolated_environment)
    newest_updated = _updated_at(isolated_environment)

    # A lagging replica: every record one version back; ids 5 and 7 are also sent a second time
    # in a version newer than the stored one, which wins.
    lagging = _load(demo_api, instance, data_version=1, duplicate_ids={5, 7}, duplicate_version=3)

    after = table_snapshot(isolated_environment)
    after_updated = _updated_at(isolated_environment)
    assert len(after) == RECORDS
    assert [row for row in after if row[0] not in (5, 7)] == [
        row for row in newest if row[0] not in (5, 7)
    ]
    assert all(after_updated[i] > newest_updated[i] for i in (5, 7))
    assert (lagging.passed, lagging.severity) == (False, AssetCheckSeverity.WARN)
    # Every copy of version 1 arrived older than the stored version 2.
    assert lagging.metadata["older_versions_discarded"].value == RECORDS
    assert lagging.metadata["sample_offending_ids"].value == list(range(1, 21))
    assert "300 records older than the version stored" in lagging.description
    assert "ids 1 (" in lagging.description and "and 280 more" in lagging.description

    # Version 2 again: equal for most ids (not older: replaced by the same), older for 5 and 7.
    again = _load(demo_api, instance, data_version=2)

    assert _updated_at(isolated_environment) == after_updated
    assert again.metadata["older_versions_discarded"].value == 2
    assert again.metadata["sample_offending_ids"].value == [5, 7]
    assert (again.passed, again.severity) == (False, AssetCheckSeverity.WARN)

    # A newer version of everything replaces every row; nothing is older, the check passes.
    newer = _load(demo_api, instance, data_version=4)

    assert newer.passed, newer.description
    assert newer.metadata["older_versions_discarded"].value == 0
    assert all(
        updated > after_updated[i] for i, updated in _updated_at(isolated_environment).items()
    )


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_identical_runs_leave_identical_rows(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    # Equal `updated_at` across loads: the later load wins, so identical runs agree.
    _load(demo_api, instance, data_version=1, duplicate_ids={9, 10})
    first = table_snapshot(isolated_environment)
    check = _load(demo_api, instance, data_version=1, duplicate_ids={9, 10})

    assert table_snapshot(isolated_environment) == first
    assert check.passed, check.description
    assert check.metadata["older_versions_discarded"].value == 0
