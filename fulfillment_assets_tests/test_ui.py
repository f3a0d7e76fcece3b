"""The Dagster UI in headless Chromium, step by step as the README's "The Dagster UI" section
says: Lineage and "Materialize all (4)", then Catalog and the raw table's page with its checks,
columns, row count and freshness, and the checks after a run that failed to execute (as
docs/operations.md "Reading a run in the UI" says); a load's progress while it runs, a failed
run's cause first on its page, and a full refresh from its job's Launchpad.
Screenshots go to test-artifacts/ui/."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster_graphql import DagsterGraphQLClient
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from fulfillment_assets.automation.freshness import FULL_REFRESH_JOB_NAME, REFRESH_JOB_NAME
from fulfillment_assets.models.columns import model_column_description
from fulfillment_assets_tests.helpers import TEST_API_KEY, query
from fulfillment_assets_tests.served.cli import REPO_ROOT
from fulfillment_assets_tests.served.process import HOST
from fulfillment_assets_tests.served.server import ServedProject, served_project

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
RECORDS = 2000
RUN_TIMEOUT_SECONDS = 180
UI_TIMEOUT_MS = 30_000
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

GROUP = "fulfillment"
API = "fulfillment_api"
RAW = "fulfillment_data"
VALIDATED = "orders_validated"
REJECTED = "orders_rejected"
SUMMARY = "orders_daily_summary"
ASSETS = [API, RAW, VALIDATED, REJECTED, SUMMARY]
LOCATION = "fulfillment_assets"
# Orders the API drops before the full refresh.
REMOVED = (7, 1500)
LINEAGE = {(API, RAW), (RAW, VALIDATED), (RAW, REJECTED), (VALIDATED, SUMMARY), (REJECTED, SUMMARY)}
# The checks tab: each check's status, and the icon that tells a WARN failure from an ERROR one.
CHECK_STATUSES = {
    "customer_id_not_null": ("Failed", "warning_outline"),
    "order_status_not_null": ("Failed", "warning_outline"),
    "schema_contract": ("Succeeded", "check_circle"),
    "order_status_accepted": ("Succeeded", "check_circle"),
    "id_unique_and_not_null": ("Succeeded", "check_circle"),
    "field_names_distinct": ("Succeeded", "check_circle"),
    "updated_at_never_goes_back": ("Succeeded", "check_circle"),
    "values_of_their_column_type": ("Succeeded", "check_circle"),
    "walk_complete": ("Succeeded", "check_circle"),
    "no_rows_marked_deleted": ("Succeeded", "check_circle"),
}
RAW_COLUMNS = [
    "id",
    "customer_id",
    "order_status",
    "created_at",
    "updated_at",
    "amount",
    "_dlt_load_id",
]

STEP_FAILURE = "ExecutionStepFailureEvent"
RUN_EVENTS_QUERY = """
query RunEvents($runId: ID!, $after: String) {
  logsForRun(runId: $runId, afterCursor: $after) {
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message level timestamp stepKey }
        ... on ExecutionStepFailureEvent { error { message className } }
      }
    }
  }
}
"""
STALE_STATUS_QUERY = "{ assetNodes { assetKey { path } isMaterializable staleStatus } }"

DEPENDENCIES_QUERY = """
{ assetNodes { assetKey { path } dependencyKeys { path } } }
"""

# Asset nodes and edges as the graph renders them: a node is a foreignObject, an edge an SVG
# path with an arrowhead from the right side of one node to the left side of another.
RENDERED_GRAPH_JS = """
(names) => {
  const nodes = [...document.querySelectorAll('foreignObject')].map((el) => {
    const text = el.textContent || '';
    const name = names.filter((n) => text.includes(n)).sort((a, b) => b.length - a.length)[0];
    return {
      name: name || null,
      text,
      x: +el.getAttribute('x'), y: +el.getAttribute('y'),
      w: +el.getAttribute('width'), h: +el.getAttribute('height'),
    };
  });
  const edges = [...document.querySelectorAll('path[marker-end]')].map((el) => {
    const points = (el.getAttribute('d').match(/-?[\\d.]+/g) || []).map(Number);
    return {x1: points[0], y1: points[1], x2: points.at(-2), y2: points.at(-1)};
  });
  return {nodes, edges};
}
"""


@pytest.fixture(scope="module")
def chromium_executable() -> str:
    """Debian's Chromium (Playwright's own browser download is not possible here)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "Chromium is not installed, so the UI test cannot run: install it with "
            "`apt-get install -y chromium` (scripts/test.sh does).",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    """The served project, idle: the freshness sensor's own first run is over."""
    with served_project(
        tmp_path_factory.mktemp("dagster_ui"), api_key=TEST_API_KEY, records=RECORDS
    ) as served:
        # The sensor requests a refresh as soon as the daemon starts; a UI run launched while it
        # is in flight would fail on the DuckDB file's lock. Its run goes first, then the UI's.
        served.dagster.wait_until_idle()
        # What the "Join the Dagster community" dialog's Skip sends: it would cover the page.
        served.dagster.graphql("mutation { setNuxSeen }")
        yield served


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    # Should the community dialog show up all the same, dismiss it before it blocks a click.
    page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def _navigation_link(page: Page, text: str) -> Locator:
    """A link of the left navigation by the text it shows (its icon adds to its accessible name)."""
    return page.get_by_role("link").filter(has_text=re.compile(rf"^\s*{text}\s*$")).first


def _open_lineage(page: Page, project: ServedProject) -> dict[str, Any]:
    """README step 1: the UI's start page, then *Lineage* in the left navigation."""
    page.goto(project.dagster.url)
    _navigation_link(page, "Lineage").click()
    return _rendered_graph(page)


def _open_raw_table(page: Page, project: ServedProject, table: str = RAW) -> None:
    """README step 3: *Catalog* in the left navigation, then the raw table (or another one)."""
    page.goto(project.dagster.url)
    _navigation_link(page, "Catalog").click()
    expect(page.get_by_role("button", name=re.compile(r"Materialize selected"))).to_be_visible()
    page.get_by_role("link", name=f"fulfillment / {table}").first.click()
    expect(page.get_by_role("tab", name="Checks")).to_be_visible()


def _materialize_all(page: Page, project: ServedProject) -> str:
    """README step 2: "Materialize all (4)" on Lineage; the run id from the toast's View link."""
    _open_lineage(page, project)
    button = page.get_by_role("button", name=re.compile(r"Materialize all"))
    # Every asset the project builds: the API is external, so it is the raw table and 3 models.
    expect(button).to_have_text(re.compile(r"Materialize all \(4\)"))
    button.click()
    # The launch toast links to the run; its href holds the full run id.
    view = page.get_by_role("link", name="View", exact=True)
    expect(view).to_have_attribute("href", re.compile(r"/runs/[0-9a-f-]{36}"))
    return (view.get_attribute("href") or "").rsplit("/", 1)[-1]


def _rendered_graph(page: Page) -> dict[str, Any]:
    """Wait until every asset's node is drawn with its live data, then read the nodes and edges
    off the SVG."""
    page.wait_for_function(
        """(names) => { const text = [...document.querySelectorAll('foreignObject')]
             .map((el) => el.textContent).join(' ');
           return names.every((n) => text.includes(n)) && !text.includes('Loading')
             && document.querySelectorAll('path[marker-end]').length > 0; }""",
        arg=ASSETS,
        timeout=UI_TIMEOUT_MS,
    )
    return page.evaluate(RENDERED_GRAPH_JS, ASSETS)


def _edges_between_nodes(graph: dict[str, Any]) -> set[tuple[str | None, str | None]]:
    """(upstream, downstream) names: an edge leaves a node's right side, ends at another's left."""

    def node_at(x: float, y: float, side: str) -> str | None:
        for node in graph["nodes"]:
            edge_x = node["x"] + node["w"] if side == "right" else node["x"]
            if abs(x - edge_x) <= 12 and node["y"] <= y <= node["y"] + node["h"]:
                return node["name"]
        return None

    return {
        (node_at(e["x1"], e["y1"], "right"), node_at(e["x2"], e["y2"], "left"))
        for e in graph["edges"]
    }


def test_asset_graph_shows_every_asset_and_the_lineage(
    page: Page, project: ServedProject, artifacts: Path
) -> None:
    graph = _open_lineage(page, project)
    expect(page.get_by_role("button", name=re.compile(r"Materialize all"))).to_be_visible()
    page.screenshot(path=artifacts / "01-asset-graph.png")

    assert sorted(node["name"] for node in graph["nodes"]) == sorted(ASSETS)
    assert _edges_between_nodes(graph) == LINEAGE
    # The same lineage as the GraphQL data the page is drawn from.
    nodes = project.dagster.graphql(DEPENDENCIES_QUERY)["assetNodes"]
    dependencies = {
        (dependency["path"][-1], node["assetKey"]["path"][-1])
        for node in nodes
        for dependency in node["dependencyKeys"]
    }
    assert dependencies == LINEAGE


def test_materialize_all_from_the_graph(
    page: Page, project: ServedProject, artifacts: Path
) -> None:
    run_id = _materialize_all(page, project)

    status = project.dagster.wait_for_run(run_id, timeout=RUN_TIMEOUT_SECONDS)
    page.goto(f"{project.dagster.url}/runs/{run_id}")
    expect(page.get_by_text("4 assets", exact=True)).to_be_visible()
    expect(page.get_by_text("Loading run logs")).to_have_count(0)
    page.screenshot(path=artifacts / "02-run.png")
    assert status == "SUCCESS", project.dagster.log_tail(lines=80)
    # The run page agrees: a success that built 4 assets and ran the 11 checks on them.
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    expect(page.get_by_text("11 checks", exact=True)).to_be_visible()
    expect(page.get_by_text("RUN_SUCCESS", exact=True)).to_be_visible()

    # Back on the graph, each node shows its latest materialization and check results: the
    # raw table's two WARN checks as not passed, the models' check as passed.
    graph = _open_lineage(page, project)
    page.screenshot(path=artifacts / "03-asset-graph-materialized.png")
    text = {node["name"]: node["text"] for node in graph["nodes"]}
    for name in (RAW, VALIDATED, REJECTED, SUMMARY):
        assert "Materialized" in text[name], text[name]
    assert "8 / 10 Passed" in text[RAW], text[RAW]
    assert "1 / 1 Passed" in text[VALIDATED], text[VALIDATED]


def _run_events(project: ServedProject, run_id: str) -> list[dict[str, Any]]:
    """Every event of the run's log, as the run page reads them (GraphQL `logsForRun`)."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = project.dagster.graphql(RUN_EVENTS_QUERY, {"runId": run_id, "after": cursor})
        connection = page["logsForRun"]
        events += connection["events"]
        cursor = connection["cursor"]
        if not connection["hasMore"]:
            return events


def _status_value(page: Page, label: str) -> Locator:
    """The box of the asset page's Status section that holds `label` and its value."""
    return page.get_by_text(label, exact=True).first.locator("xpath=..")


def test_raw_asset_page_shows_checks_columns_row_count_and_freshness(
    page: Page, project: ServedProject, artifacts: Path
) -> None:
    _open_raw_table(page, project)
    expect(page.get_by_text("Columns", exact=True)).to_be_visible()
    expect(_status_value(page, "Row count")).to_contain_text(f"{RECORDS:,}")
    expect(_status_value(page, "Freshness policy")).to_contain_text("Passing")
    page.screenshot(path=artifacts / "04-raw-asset-overview.png")

    # The column schema, with the descriptions the project declares, dlt's column included.
    for column in RAW_COLUMNS:
        expect(page.get_by_role("cell", name=column, exact=True)).to_be_visible()
    expect(page.get_by_text("Customer the order belongs to", exact=False)).to_be_visible()
    expect(page.get_by_text("The dlt load that last wrote the row", exact=False)).to_be_visible()
    # No library object the page cannot render, no local file path of dlt's load jobs.
    expect(page.get_by_text("(unserializable)", exact=False)).to_have_count(0)
    expect(page.get_by_text("dlt_pipelines", exact=False)).to_have_count(0)
    # The freshness policy: a time window, passing, in the definition panel too.
    expect(
        page.get_by_text("Fails if more than 24 hours since last materialization")
    ).to_be_visible()
    expect(
        page.get_by_text("Warns if more than 12 hours since last materialization")
    ).to_be_visible()

    page.get_by_role("tab", name="Checks").click()
    expect(page.get_by_text(f"Checks ({len(CHECK_STATUSES)})")).to_be_visible()
    for name, (status, icon) in CHECK_STATUSES.items():
        entry = page.get_by_text(name, exact=True).first.locator(
            "xpath=ancestor::*[.//*[@role='img']][1]"
        )
        # One check's entry: its own icon, name and status, not the whole list's.
        expect(entry.get_by_role("img")).to_have_count(1)
        expect(entry).to_contain_text(status)
        expect(entry.get_by_role("img", name=icon)).to_be_visible()

    for name, offending in (("customer_id_not_null", 40), ("order_status_not_null", 20)):
        page.get_by_text(name, exact=True).first.click()
        detail = page.get_by_text(f"{offending} of {RECORDS} rows:")
        expect(detail).to_be_visible()
        # The metadata table: offending_rows next to its count, rows_checked next to all rows.
        for label, value in (("offending_rows", offending), ("rows_checked", RECORDS)):
            row = page.get_by_text(label, exact=True).first.locator("xpath=ancestor::tr[1]")
            expect(row).to_have_text(re.compile(rf"^\s*{label}\s*{value}\s*$"))
        page.screenshot(path=artifacts / f"05-raw-asset-check-{name}.png")


def test_checks_after_a_run_that_failed_to_execute(
    page: Page, project: ServedProject, artifacts: Path
) -> None:
    # The API refuses the key: the load fails, and no check runs.
    project.api.configure(fail_status=401)
    try:
        run_id = _materialize_all(page, project)
        status = project.dagster.wait_for_run(run_id, timeout=RUN_TIMEOUT_SECONDS)
    finally:
        project.api.configure(fail_status=None)
    assert status == "FAILURE", project.dagster.log_tail(lines=80)

    # The step's error is the project's message, once, on top: what, where and the setting.
    (failure,) = [
        event for event in _run_events(project, run_id) if event["__typename"] == STEP_FAILURE
    ]
    assert failure["error"]["className"] == "Failure"
    cause = failure["error"]["message"].strip()
    assert cause.startswith(
        "dagster._core.definitions.events.Failure: the fulfillment API rejected the API key "
        "(HTTP 401) on GET /v1/fulfillment at offset 0"
    ), cause
    assert (
        ": set SOURCES__FULFILLMENT__API_KEY (or api_key under [sources.fulfillment] in "
        ".dlt/secrets.toml) to a valid key; the API says: 'injected fault'"
    ) in cause, cause
    assert cause.count("rejected the API key") == 1, cause
    assert TEST_API_KEY not in json.dumps(failure)
    # The run page shows it as the step's failure, the wrappers below it.
    page.goto(f"{project.dagster.url}/runs/{run_id}")
    expect(page.get_by_text("Loading run logs")).to_have_count(0)
    expect(
        page.get_by_text(re.compile(r"the fulfillment API rejected the API key \(HTTP 401\)")).first
    ).to_be_visible()
    page.screenshot(path=artifacts / "06-run-failed-cause-first.png")

    # As docs/operations.md says: every check of the raw table is listed as failed, in red; each
    # one's latest execution reads "Execution failed".
    _open_raw_table(page, project)
    page.get_by_role("tab", name="Checks").click()
    expect(page.get_by_text(f"Checks ({len(CHECK_STATUSES)})")).to_be_visible()
    for name in CHECK_STATUSES:
        entry = page.get_by_text(name, exact=True).first.locator(
            "xpath=ancestor::*[.//*[@role='img']][1]"
        )
        expect(entry).to_contain_text("Failed")
        expect(entry.get_by_role("img", name="cancel")).to_be_visible()
        entry.click()
        expect(page.get_by_text("Latest execution", exact=True)).to_be_visible()
        expect(page.get_by_text("Execution failed", exact=True)).to_be_visible()
    page.screenshot(path=artifacts / "06-raw-asset-checks-after-failed-run.png")


# A column of each model and an upstream column its `dagster/column_lineage` names.
MODEL_LINEAGE = {
    VALIDATED: ("customer_id", "customer_id"),
    REJECTED: ("rejection_reasons", "order_status"),
    SUMMARY: ("amount_total", "amount"),
}
LINEAGE_QUERY = """
{ assetOrError(assetKey: {path: ["fulfillment", "%s"]}) { ... on Asset {
    assetMaterializations(limit: 1) { metadataEntries { label __typename
      ... on TableColumnLineageMetadataEntry {
        lineage { columnName columnDeps { assetKey { path } columnName } } } } } } } }
"""
SUMMARY_COLUMNS = ["order_date", "quality", "order_status", "orders", "amount_total"]


def _column_rows(page: Page) -> dict[str, str]:
    """Column name -> description, as the asset page's Columns table shows them."""
    table = page.locator("table").filter(has=page.get_by_text("Column name", exact=True)).first
    expect(table).to_be_visible()
    rows = table.locator("tbody tr")
    expect(rows.first).to_be_visible()
    shown = {}
    for index in range(rows.count()):
        cells = rows.nth(index).locator("td")
        shown[cells.nth(0).inner_text().strip()] = cells.nth(2).inner_text().strip()
    return shown


def test_model_pages_describe_every_column_and_show_column_lineage(
    page: Page, project: ServedProject, artifacts: Path
) -> None:
    # Every column of every table described: the raw table's and each model's, after the run.
    for table in (RAW, VALIDATED, REJECTED, SUMMARY):
        _open_raw_table(page, project, table)
        expect(page.get_by_text("Columns", exact=True)).to_be_visible()
        columns = _column_rows(page)
        page.screenshot(path=artifacts / f"07-columns-{table}.png")
        assert columns, table
        for name, description in columns.items():
            assert description, (table, name)
            if table != RAW:
                # Copied columns show the raw table's description, computed ones their own (as
                # Markdown: `code` shows without its backticks).
                expected = model_column_description(name).replace("`", "")
                assert description == expected, (table, name)
        if table == SUMMARY:
            assert list(columns) == SUMMARY_COLUMNS
        if table in (VALIDATED, REJECTED):
            assert set(RAW_COLUMNS) - {"_dlt_load_id"} <= set(columns), (table, columns)

    # Column lineage on the models' latest materialization. The OSS UI's event view does not
    # render `dagster/column_lineage` (its Metadata table lists row count, schema and table name
    # only), so it is read from the GraphQL API the pages are drawn from.
    for table, (column, upstream) in MODEL_LINEAGE.items():
        asset = project.dagster.graphql(LINEAGE_QUERY % table)["assetOrError"]
        (materialization,) = asset["assetMaterializations"]
        (entry,) = [
            entry
            for entry in materialization["metadataEntries"]
            if entry["label"] == "dagster/column_lineage"
        ]
        assert entry["__typename"] == "TableColumnLineageMetadataEntry"
        deps = {item["columnName"]: item["columnDeps"] for item in entry["lineage"]}
        assert upstream in {dep["columnName"] for dep in deps[column]}, (table, deps)


def test_a_running_load_shows_its_progress_in_the_run_log(
    page: Page, project: ServedProject, artifacts: Path
) -> None:
    # Pages of 3 s each (up to 8 fetched at once): a load of about 10 s, whose progress lines
    # (every 2 s) show while it runs.
    project.api.configure(latency_ms=3000)
    try:
        client = DagsterGraphQLClient(HOST, port_number=project.dagster.port, timeout=30)
        run_id = client.submit_job_execution(REFRESH_JOB_NAME)
        seen_while_running: list[str] = []
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while project.dagster.run_status(run_id) not in ("SUCCESS", "FAILURE", "CANCELED"):
            assert time.monotonic() < deadline, project.dagster.log_tail(lines=80)
            seen_while_running = [
                event["message"]
                for event in _run_events(project, run_id)
                if event["__typename"] == "LogMessageEvent"
                and event["message"].startswith("fetched ")
            ]
            if len(seen_while_running) >= 2:
                break
            time.sleep(0.5)
        # Two progress lines read from the run's log before the run ended: the load moving.
        assert project.dagster.run_status(run_id) == "STARTED", seen_while_running
        assert len(seen_while_running) >= 2, seen_while_running
        assert re.fullmatch(
            rf"fetched \d+ pages?, \d+ records, [\d,]+ records/s, \d+% of {RECORDS}, ETA \d+ s",
            seen_while_running[0],
        ), seen_while_running
        status = project.dagster.wait_for_run(run_id, timeout=RUN_TIMEOUT_SECONDS)
    finally:
        project.api.configure(latency_ms=0)
    assert status == "SUCCESS", project.dagster.log_tail(lines=80)
    messages = [e.get("message", "") for e in _run_events(project, run_id)]
    assert any(re.match(r"fetched \d+ pages, \d+ records, .* done$", m) for m in messages)
    # The run page's log, filtered on the text as an operator would type it.
    page.goto(f"{project.dagster.url}/runs/{run_id}?logs=fetched")
    expect(page.get_by_text(re.compile(r"fetched \d+ pages, \d+ records")).first).to_be_visible()
    page.screenshot(path=artifacts / "08-run-progress.png")


def test_a_full_refresh_from_its_launchpad_leaves_every_table_in_sync(
    page: Page, project: ServedProject, artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.dagster.wait_until_idle()
    project.api.configure(removed_ids=set(REMOVED))
    try:
        page.goto(
            f"{project.dagster.url}/locations/{LOCATION}/jobs/{FULL_REFRESH_JOB_NAME}/playground"
        )
        # The job's own config is filled in: nothing to type.
        expect(page.get_by_text("full_refresh: true").first).to_be_visible()
        page.screenshot(path=artifacts / "09-full-refresh-launchpad.png")
        page.get_by_role("button", name="Launch run").click()
        page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
        run_id = page.url.rsplit("/", 1)[-1].split("?")[0]
        status = project.dagster.wait_for_run(run_id, timeout=RUN_TIMEOUT_SECONDS)
    finally:
        project.api.configure(removed_ids=frozenset())
    assert status == "SUCCESS", project.dagster.log_tail(lines=80)

    # Nothing is left unsynced: every asset the project builds is up to date with the raw table.
    nodes = project.dagster.graphql(STALE_STATUS_QUERY)["assetNodes"]
    stale = {
        node["assetKey"]["path"][-1]: node["staleStatus"]
        for node in nodes
        if node["isMaterializable"]
    }
    assert stale == {name: "FRESH" for name in (RAW, VALIDATED, REJECTED, SUMMARY)}, stale
    # And no model holds a row the refresh marked deleted.
    monkeypatch.setenv("FULFILLMENT_DATA_DIR", str(project.dagster.data_dir))
    marked = query(
        project.dagster.data_dir,
        "SELECT id FROM fulfillment.fulfillment_data WHERE _deleted_at IS NOT NULL ORDER BY id",
    )
    assert marked == [(i,) for i in REMOVED]
    for table in (VALIDATED, REJECTED):
        held = query(
            project.dagster.data_dir,
            f"SELECT count(*) FROM fulfillment.{table} WHERE id IN {REMOVED}",
        )
        assert held == [(0,)], table
    page.screenshot(path=artifacts / "10-full-refresh-run.png")
