"""The garbage collector runs less often during a walk, and as before after it."""

from __future__ import annotations

import gc
from pathlib import Path

from dagster import DagsterInstance

from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets.source import fulfillment
from fulfillment_assets.source.collector import WALK_GC_THRESHOLD, fewer_collections
from fulfillment_assets_tests.helpers import RAW_ONLY, TEST_API_KEY, materialize_all


def test_the_threshold_is_raised_within_the_block_and_restored_after() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == (max(before[0], WALK_GC_THRESHOLD), *before[1:])
    assert gc.get_threshold() == before


def test_a_walk_raises_the_threshold_while_it_runs_and_restores_it(
    demo_api: DemoApiServer,
) -> None:
    before = gc.get_threshold()
    source = fulfillment(base_url=demo_api.url, api_key=TEST_API_KEY, arrow_batch_rows=100)
    batches = iter(source.resources["fulfillment_data"])
    next(batches)
    seen_during = gc.get_threshold()
    rest = list(batches)
    assert seen_during[0] == max(before[0], WALK_GC_THRESHOLD)
    assert sum(batch.num_rows for batch in rest) + 100 == demo_api.options.records
    assert gc.get_threshold() == before


def test_a_materialization_leaves_the_threshold_as_it_found_it(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    before = gc.get_threshold()
    assert materialize_all(instance, selection=RAW_ONLY).success
    assert gc.get_threshold() == before
