"""The code location's shape, snapshotted: a change to its assets, lineage, checks or automation
shows in review as a diff of `snapshots/definitions.json`.

After an intended change: `UPDATE_SNAPSHOTS=1 python -m pytest -k snapshot`, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fulfillment_assets.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def definitions_shape() -> dict[str, Any]:
    """What review should see of the definitions: no descriptions or metadata, just the shape."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "materializable": node.is_materializable,
            "owners": list(node.owners),
            "freshness_policy": type(node.freshness_policy).__name__
            if node.freshness_policy
            else None,
            "pools": sorted(node.pools or []),
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: k.to_user_string()):
        spec = graph.get_check_spec(check_key)
        checks[check_key.to_user_string()] = {
            "blocking": spec.blocking,
            "additional_deps": sorted(
                dep.asset_key.to_user_string() for dep in spec.additional_deps
            ),
        }
    repository = defs.get_repository_def()
    return {
        "assets": assets,
        "checks": checks,
        "jobs": sorted(
            job.name for job in repository.get_all_jobs() if not job.name.startswith("__")
        ),
        "schedules": {
            schedule.name: {
                "job": schedule.job_name,
                "cron": schedule.cron_schedule,
                "default_status": schedule.default_status.value,
            }
            for schedule in repository.schedule_defs
        },
        "sensors": {
            sensor.name: {
                "jobs": sorted(job.name for job in sensor.jobs) if sensor.has_jobs else [],
                "default_status": sensor.default_status.value,
            }
            for sensor in repository.sensor_defs
        },
        "resources": sorted(defs.resources or {}),
    }


def test_definitions_match_the_snapshot() -> None:
    shape = definitions_shape()
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(shape, indent=2, sort_keys=True) + "\n")
    assert shape == json.loads(SNAPSHOT.read_text()), (
        "the definitions changed: if intended, run with UPDATE_SNAPSHOTS=1 and review the diff"
    )
