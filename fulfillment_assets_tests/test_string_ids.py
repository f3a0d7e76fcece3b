"""Ids of another type than integers, against a fake API of the test's own: text ids
(`ord_000123`, as many real APIs send them) load, and the id check, newest-wins, deletes and
incremental sync work as for integers; ids whose type changes get a message naming the setting."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from fulfillment_assets_tests.fake_api import serve_fake_api
from fulfillment_assets_tests.helpers import failure_message, materialize_all, query

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
RAW_KEY = AssetKey(["fulfillment", "fulfillment_data"])


class TextIdApi:
    """`records` orders with ids `ord_000001`...; `updated_since` filters by `updated_at`."""

    def __init__(self, records: int = 250) -> None:
        self.orders = {self.order_id(n): self._order(n, version=0) for n in range(1, records + 1)}
        self.lock = threading.Lock()
        self.since_sent: list[str | None] = []

    @staticmethod
    def order_id(number: int) -> str:
        return f"ord_{number:06d}"

    def _order(self, number: int, version: int) -> dict:
        return {
            "id": self.order_id(number),
            "customer_id": f"cus_{number % 17:03d}",
            "order_status": "shipped",
            "updated_at": (START + dt.timedelta(hours=version, seconds=number)).isoformat(),
            "amount": float(number),
        }

    def update(self, number: int, version: int) -> None:
        self.orders[self.order_id(number)] = self._order(number, version)

    def page(self, offset: int, limit: int, params: dict[str, str]) -> dict:
        with self.lock:
            since = params.get("updated_since")
            if offset == 0:
                self.since_sent.append(since)
            listing = [
                order
                for _, order in sorted(self.orders.items())
                if since is None or dt.datetime.fromisoformat(order["updated_at"]) >= _at(since)
            ]
            return {"data": listing[offset : offset + limit], "total": len(listing)}


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def text_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[TextIdApi]:
    api = TextIdApi()
    with serve_fake_api(api, monkeypatch):
        yield api


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.every_destination
def test_text_ids_load_and_every_sync_works_as_for_integers(
    text_ids: TextIdApi, instance: DagsterInstance, isolated_environment: Path
) -> None:
    first = materialize_all(instance)

    assert first.success
    checks = _checks(first)
    for name in ("schema_contract", "id_unique_and_not_null", "walk_complete"):
        assert checks[name].passed, (name, checks[name].description)
    assert query(
        isolated_environment,
        "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM fulfillment.fulfillment_data",
    ) == [(250, 250, "ord_000001", "ord_000250")]
    assert query(isolated_environment, "SELECT count(*) FROM fulfillment.orders_validated") == [
        (250,)
    ]

    # A full walk that no longer finds ord_000007 marks it deleted; ord_000003 changed.
    del text_ids.orders[text_ids.order_id(7)]
    text_ids.update(3, version=5)
    second = materialize_all(instance)
    assert second.success
    assert not _checks(second)["no_rows_marked_deleted"].passed
    assert query(
        isolated_environment,
        "SELECT id FROM fulfillment.fulfillment_data WHERE _deleted_at IS NOT NULL",
    ) == [("ord_000007",)]
    assert query(
        isolated_environment,
        "SELECT count(*) FROM fulfillment.fulfillment_data WHERE id = 'ord_000003' "
        "AND updated_at > '2026-11-01 04:00:00+00'",
    ) == [(1,)]

    # Incremental: only what changed since the cursor; the merge on a text id keeps one row.
    text_ids.update(10, version=9)
    with pytest.MonkeyPatch.context() as incremental:
        incremental.setenv("SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM", "updated_since")
        incremental.setenv("SOURCES__FULFILLMENT__LOOKBACK_SECONDS", "0")
        assert materialize_all(instance).success  # the first incremental run walks everything
        text_ids.update(11, version=12)
        assert materialize_all(instance).success
    assert text_ids.since_sent[-1] is not None
    assert query(
        isolated_environment,
        "SELECT count(*), count(DISTINCT id) FROM fulfillment.fulfillment_data",
    ) == [(250, 250)]
    assert query(
        isolated_environment,
        "SELECT CAST(updated_at AS TEXT) FROM fulfillment.fulfillment_data WHERE id = 'ord_000011'",
    )[0][0].startswith("2026-11-01 12:00:11")


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_integer_ids_in_a_text_id_table_keep_their_digits(
    text_ids: TextIdApi, instance: DagsterInstance, isolated_environment: Path
) -> None:
    assert materialize_all(instance).success
    text_ids.orders["x"] = {**text_ids.orders.pop(text_ids.order_id(1)), "id": 42}

    assert materialize_all(instance).success

    assert query(
        isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data WHERE id = '42'"
    ) == [(1,)]


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_text_ids_after_integer_ids_fail_naming_the_id_and_the_setting(
    text_ids: TextIdApi, instance: DagsterInstance, isolated_environment: Path
) -> None:
    integer_orders = {
        key: {**order, "id": number}
        for number, (key, order) in enumerate(sorted(text_ids.orders.items()), start=1)
    }
    text_orders, text_ids.orders = text_ids.orders, integer_orders
    assert materialize_all(instance).success
    before = query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data")
    text_ids.orders = text_orders

    result = materialize_all(instance, raise_on_error=False)

    assert not result.success
    message = failure_message(result)
    assert "'ord_000001'" in message and "SOURCES__FULFILLMENT__ID_TYPE=text" in message, message
    assert (
        query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data") == before
    )


def test_a_bad_id_type_setting_is_refused_naming_it(
    text_ids: TextIdApi, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__ID_TYPE", "uuid")

    result = materialize_all(instance, raise_on_error=False)

    message = failure_message(result)
    assert "id_type is 'uuid'" in message and "SOURCES__FULFILLMENT__ID_TYPE" in message, message


def _updated_at(data_dir: Path, order_id: str) -> str:
    ((updated,),) = query(
        data_dir,
        "SELECT CAST(updated_at AS TEXT) FROM fulfillment.fulfillment_data WHERE id = %s",
        order_id,
    )
    return str(updated)


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.every_destination
def test_an_older_version_of_a_text_id_after_a_newer_one_does_not_win(
    text_ids: TextIdApi, instance: DagsterInstance, isolated_environment: Path
) -> None:
    assert materialize_all(instance).success
    text_ids.update(3, version=5)
    assert materialize_all(instance).success
    newer = _updated_at(isolated_environment, "ord_000003")
    assert newer.startswith("2026-11-01 05:00:03")

    text_ids.update(3, version=1)  # a replica behind: the older version comes back
    assert materialize_all(instance).success

    assert _updated_at(isolated_environment, "ord_000003") == newer
    assert query(
        isolated_environment,
        "SELECT count(*), count(DISTINCT id) FROM fulfillment.fulfillment_data",
    ) == [(250, 250)]


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.every_destination
def test_id_type_text_set_loads_integer_looking_and_text_ids(
    text_ids: TextIdApi,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__ID_TYPE", "text")
    for number in range(1, 151):  # the first pages' ids are integers, the rest text
        key = text_ids.order_id(number)
        text_ids.orders[key] = {**text_ids.orders[key], "id": number}

    assert materialize_all(instance).success

    assert query(
        isolated_environment,
        "SELECT count(*), count(DISTINCT id) FROM fulfillment.fulfillment_data "
        "WHERE id IN ('1', '150', 'ord_000151', 'ord_000250')",
    ) == [(4, 4)]
    assert query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data") == [
        (250,)
    ]


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_an_id_type_contradicting_the_table_is_refused_naming_it_before_any_request(
    text_ids: TextIdApi,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert materialize_all(instance).success  # the table's `id` is text
    before = query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data")
    walks = len(text_ids.since_sent)
    monkeypatch.setenv("SOURCES__FULFILLMENT__ID_TYPE", "bigint")

    result = materialize_all(instance, raise_on_error=False)

    assert not result.success
    message = failure_message(result)
    assert "SOURCES__FULFILLMENT__ID_TYPE is bigint, but the raw table's `id` is text" in message
    assert len(text_ids.since_sent) == walks  # no page was asked for
    assert (
        query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data") == before
    )
