"""An API this project never saw, on DuckDB and on PostgreSQL: other statuses, fields of its own,
none of the fields the seed does not state (`created_at`, `amount`). No guess about it blocks a
run: every asset builds, the checks WARN where they should. And a check never passes on data it
could not read."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from dagster import AssetCheckSeverity, AssetSelection, DagsterInstance

from fulfillment_assets.contract import RAW_ASSET_KEY as RAW_KEY
from fulfillment_assets.contract import REJECTED_KEY, VALIDATED_KEY
from fulfillment_assets_tests.helpers import TEST_API_KEY, materialize_all, query

pytestmark = pytest.mark.every_destination

STATUSES = ("pending", "picked", "packed", "shipped", "delivered", "returned", "cancelled")
RECORDS = 350


def other_record(record_id: int, statuses: tuple[str, ...] = STATUSES) -> dict[str, Any]:
    """A record as an API written apart from this project sends it."""
    return {
        "id": record_id,
        "customer_id": None if record_id % 50 == 0 else f"cust-{record_id % 97}",
        "order_status": statuses[record_id % len(statuses)],
        "warehouse": f"WH-{record_id % 3}",
        "total_amount": f"{record_id * 1.5:.2f}",
    }


class OtherApi:
    """`GET /v1/fulfillment?api_key=&limit=&offset=` -> {"data": [...], "total": n}."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != "/v1/fulfillment" or params.get("api_key") != TEST_API_KEY:
                    self.send_response(404 if url.path != "/v1/fulfillment" else 401)
                    self.end_headers()
                    return
                offset, limit = int(params.get("offset", 0)), int(params.get("limit", 100))
                page = api.records[offset : offset + limit]
                body = json.dumps({"data": page, "total": len(api.records)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> OtherApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def other_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtherApi]:
    with OtherApi() as api:
        monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", api.url)
        monkeypatch.setenv("SOURCES__FULFILLMENT__API_KEY", TEST_API_KEY)
        yield api


def _evaluations(result: Any) -> dict[str, Any]:
    return {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}


def _materialized(result: Any) -> set[str]:
    return {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}


ALL_TABLES = {"fulfillment_data", "orders_validated", "orders_rejected", "orders_daily_summary"}


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_materialize_all_succeeds_and_new_statuses_warn_without_blocking(
    other_api: OtherApi, instance: DagsterInstance, isolated_environment: Path
) -> None:
    other_api.records = [other_record(i) for i in range(1, RECORDS + 1)]

    first = materialize_all(instance)

    assert first.success and _materialized(first) == ALL_TABLES
    evaluations = _evaluations(first)
    accepted = evaluations["order_status_accepted"]
    assert accepted.passed
    assert accepted.description.startswith("first load: statuses recorded as known")
    counts = accepted.metadata["status_counts"].value
    assert set(counts) == set(STATUSES) and sum(counts.values()) == RECORDS
    customer = evaluations["customer_id_not_null"]
    assert (customer.passed, customer.severity) == (False, AssetCheckSeverity.WARN)
    assert customer.metadata["offending_rows"].value == RECORDS // 50
    assert evaluations["schema_contract"].passed
    # No status rejects a row without a configured set: only the null customer_ids.
    ((validated,),) = query(
        isolated_environment, "SELECT count(*) FROM fulfillment.orders_validated"
    )
    assert validated == RECORDS - RECORDS // 50
    # The fields of its own are kept; the summary has no day and no amount to show.
    assert query(
        isolated_environment,
        "SELECT count(DISTINCT warehouse), count(total_amount) FROM fulfillment.fulfillment_data",
    ) == [(3, RECORDS)]
    summary = query(
        isolated_environment,
        "SELECT count(order_date), count(amount_total), sum(orders) "
        "FROM fulfillment.orders_daily_summary",
    )
    assert summary == [(0, 0, RECORDS)]

    # Later the API sends two statuses never seen before: a WARN naming each, nothing blocked.
    newer = (*STATUSES, "lost", "on_hold")
    other_api.records = [other_record(i, newer) for i in range(1, RECORDS + 1)]
    second = materialize_all(instance)

    assert second.success and _materialized(second) == ALL_TABLES
    accepted = _evaluations(second)["order_status_accepted"]
    assert (accepted.passed, accepted.severity) == (False, AssetCheckSeverity.WARN)
    lost = sum(1 for i in range(1, RECORDS + 1) if newer[i % len(newer)] == "lost")
    on_hold = sum(1 for i in range(1, RECORDS + 1) if newer[i % len(newer)] == "on_hold")
    assert f"lost ({lost} rows)" in accepted.description
    assert f"on_hold ({on_hold} rows)" in accepted.description
    assert accepted.metadata["new_statuses"].value == {"lost": lost, "on_hold": on_hold}
    assert set(accepted.metadata["status_counts"].value) == set(newer)

    # Seen once, known from then on: the next run passes.
    third = _evaluations(materialize_all(instance))["order_status_accepted"]
    assert third.passed, third.description


def test_configured_statuses_apply_todays_thresholds(
    other_api: OtherApi,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other_api.records = [other_record(i) for i in range(1, RECORDS + 1)]
    monkeypatch.setenv("FULFILLMENT_ACCEPTED_STATUSES", "pending,shipped,delivered")

    result = materialize_all(instance, raise_on_error=False)

    accepted = _evaluations(result)["order_status_accepted"]
    assert (accepted.passed, accepted.severity) == (False, AssetCheckSeverity.ERROR)
    assert "orders_validated" not in _materialized(result)


def test_an_empty_first_load_succeeds(other_api: OtherApi, instance: DagsterInstance) -> None:
    other_api.records = []

    result = materialize_all(instance)

    assert result.success and _materialized(result) >= ALL_TABLES - {"fulfillment_data"}
    assert all(e.passed for e in _evaluations(result).values())


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_check_never_passes_on_a_table_it_cannot_read(
    other_api: OtherApi,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    destination: str,
) -> None:
    other_api.records = [other_record(i) for i in range(1, RECORDS + 1)]
    assert materialize_all(instance).success
    # The checks and models now look where the table is not (another DuckDB file / database).
    if destination == "duckdb":
        monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "elsewhere.duckdb"))
    else:
        dsn = os.environ["DESTINATION__POSTGRES__CREDENTIALS"]
        monkeypatch.setenv(
            "DESTINATION__POSTGRES__CREDENTIALS", dsn.rsplit("/", 1)[0] + "/postgres"
        )

    result = materialize_all(
        instance,
        raise_on_error=False,
        selection=AssetSelection.checks_for_assets(RAW_KEY)
        | AssetSelection.assets(VALIDATED_KEY, REJECTED_KEY),
    )

    evaluations = _evaluations(result)
    assert evaluations, "no check ran"
    for name, evaluation in evaluations.items():
        assert (evaluation.passed, evaluation.severity) == (False, AssetCheckSeverity.ERROR), name
        assert "could not read" in evaluation.description, (name, evaluation.description)
    assert not result.success
    assert not _materialized(result) & {"orders_validated", "orders_rejected"}
