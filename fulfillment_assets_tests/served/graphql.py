"""What the tests ask a served Dagster's webserver. A run's status through dagster-graphql's own
`DagsterGraphQLClient`; raw GraphQL only for what that client does not offer: the workspace's load
status, the runs by status or tag, the sensors and their ticks, and the tests' own queries."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from dagster_graphql import DagsterGraphQLClient

IN_PROGRESS_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
FINISHED_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")

WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

SENSORS_QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        locationOrLoadError {
          ... on RepositoryLocation {
            repositories {
              sensors { name sensorState { status ticks(limit: 1) { status } } }
            }
          }
        }
      }
    }
  }
}
"""

SENSOR_TICKS_QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        locationOrLoadError {
          ... on RepositoryLocation {
            repositories {
              sensors {
                name
                sensorState {
                  ticks(limit: 50) {
                    status timestamp endTimestamp skipReason
                    error { message }
                    logEvents { events { message level } }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
"""

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status jobName } }
    ... on PythonError { message }
  }
}
"""


class DagsterGraphQLError(RuntimeError):
    """The webserver answered a GraphQL request with errors, or with an error result."""


class DagsterGraphQL:
    """The GraphQL API of the webserver on `host`:`port`."""

    def __init__(self, host: str, port: int) -> None:
        self.url = f"http://{host}:{port}/graphql"
        self.client = DagsterGraphQLClient(host, port_number=port, timeout=30)

    def query(
        self, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The `data` of one GraphQL request; GraphQL errors raise."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise DagsterGraphQLError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def workspace(self, timeout: float) -> dict[str, Any]:
        """The workspace's code locations and their load status, or its error."""
        return self.query(WORKSPACE_QUERY, timeout=timeout)["workspaceOrError"]

    def run_status(self, run_id: str) -> str:
        """The run's status, e.g. "STARTED" or "SUCCESS"; an unknown run raises."""
        return self.client.get_run_status(run_id).value

    def runs(
        self, *, statuses: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """The runs in these statuses and with these tags (all if none), newest first: their
        runId, status and jobName."""
        run_filter: dict[str, Any] = {}
        if statuses is not None:
            run_filter["statuses"] = list(statuses)
        if tags:
            run_filter["tags"] = [{"key": key, "value": value} for key, value in tags.items()]
        result = self.query(RUNS_QUERY, {"filter": run_filter})["runsOrError"]
        if result["__typename"] != "Runs":
            raise DagsterGraphQLError(f"runs: {result}")
        return result["results"]

    def runs_in_progress(self) -> list[dict[str, Any]]:
        """Every run queued or in progress: its runId, status and jobName."""
        return self.runs(statuses=IN_PROGRESS_STATUSES)

    def sensors(self) -> list[dict[str, Any]]:
        """Every sensor: its name, status and its latest tick's status."""
        return [
            sensor
            for entry in self.query(SENSORS_QUERY)["workspaceOrError"]["locationEntries"]
            for repository in (entry["locationOrLoadError"] or {}).get("repositories", [])
            for sensor in repository["sensors"]
        ]

    def sensor_ticks(self, name: str) -> list[dict[str, Any]]:
        """The sensor's latest ticks, newest first: status, times, skip reason, error, log."""
        for entry in self.query(SENSOR_TICKS_QUERY)["workspaceOrError"]["locationEntries"]:
            for repository in (entry["locationOrLoadError"] or {}).get("repositories", []):
                for sensor in repository["sensors"]:
                    if sensor["name"] == name:
                        return sensor["sensorState"]["ticks"]
        raise DagsterGraphQLError(f"no sensor {name}")
