"""The key-hygiene test of test_secrets.py, for every kind of auth the shape may name: the key in
a query parameter of another name, in a header, as a bearer token, as basic auth's password.
Succeeding and failing runs (a 500 and a 401 whose bodies echo the credential, a page that
times out), then every file written and everything printed is scanned for the key in each form
it travels in (basic: base64 of `user:key`)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from dagster import instance_for_test

from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    TEST_API_KEY,
    failure_message,
    materialize_all,
)
from fulfillment_assets_tests.shaped_api import (
    Auth,
    OffsetPages,
    Shape,
    demo_records,
    serve_shaped_api,
)

KINDS = {
    "query key of another name": Auth(name="key", location="query"),
    "header key": Auth(name="X-Api-Key", location="header"),
    "bearer": Auth(type="bearer"),
    "basic": Auth(type="http_basic", username="shop"),
}


def _files_containing(root: Path, secret: bytes) -> list[str]:
    return [str(path) for path in root.rglob("*") if path.is_file() and secret in path.read_bytes()]


@pytest.mark.slow  # over 5 s a kind: left out of the fast lane, as test_secrets.py
@pytest.mark.parametrize("auth", list(KINDS.values()), ids=list(KINDS))
def test_the_key_is_nowhere_whichever_way_it_travels(
    auth: Auth,
    tmp_path: Path,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__REQUEST_TIMEOUT", "0.5")
    shape = Shape(auth=auth, pages=OffsetPages(limit=50))
    messages = []
    (tmp_path / "dagster_home").mkdir()
    with (
        serve_shaped_api(shape, monkeypatch, demo_records(200)) as api,
        instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance,
    ):
        assert materialize_all(instance, selection=RAW_ONLY).success
        assert {place for r in api.requests for place in api.credential_places(r)} == {auth.sent_in}
        faults = (
            {"status": 500, "status_at": 100, "echo_key": True},
            {"drip_at": 100},
        )
        for fault in faults:
            api.inject(**fault)
            result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)
            assert not result.success
            messages.append(failure_message(result))
            api.inject()
        api.key = "the-key-the-api-expects"  # a 401 that repeats the credential it got
        api.inject(echo_key=True)
        result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)
        messages.append(failure_message(result))
        event_text = [str(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id)]

    assert "HTTP 500" in messages[0] and "HTTP 401" in messages[2], messages
    assert "request timeout" in messages[1], messages[1]
    printed = capfd.readouterr()
    forms = [TEST_API_KEY, base64.b64encode(f"shop:{TEST_API_KEY}".encode()).decode()]
    for secret in forms:
        assert not [m for m in messages if secret in m], secret
        assert not [e for e in event_text if secret in e], secret
        assert _files_containing(tmp_path, secret.encode()) == [], secret
        assert secret not in printed.out and secret not in printed.err, secret
