"""Dead-run recovery is a resource of its own that every asset and check of the project requires,
so no step can run without first failing the dead runs and holding its own liveness lock."""

from __future__ import annotations

from dagster import AssetChecksDefinition, AssetsDefinition

from fulfillment_assets.definitions import defs
from fulfillment_assets.warehouse.run_liveness import RUN_LIVENESS, RunLiveness


def test_every_asset_and_check_requires_the_run_liveness_resource() -> None:
    assert isinstance((defs.resources or {})[RUN_LIVENESS], RunLiveness)
    executable = [
        definition
        for definition in [*(defs.assets or []), *(defs.asset_checks or [])]
        if isinstance(definition, AssetsDefinition) and definition.is_executable
    ]
    names = set()
    for definition in executable:
        names |= {key.to_user_string() for key in definition.keys}
        names |= {key.name for key in definition.check_keys}
        assert RUN_LIVENESS in definition.required_resource_keys, definition.node_def.name
    # Every asset the project materializes and every check it defines was looked at.
    assert {"fulfillment/fulfillment_data", "fulfillment/orders_validated"} <= names
    assert {"schema_contract", "walk_complete", "validated_plus_rejected_equals_raw"} <= names
    assert any(isinstance(d, AssetChecksDefinition) for d in executable)
