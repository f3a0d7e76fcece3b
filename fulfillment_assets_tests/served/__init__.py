"""Dagster served in subprocesses, for the tests that drive its UI and GraphQL API, by job:
`cli.py` (the project's paths, a subprocess's environment, CLI commands, polling), `process.py`
(the webserver and daemon processes, their logs, stopping them), `graphql.py` (what the tests ask
the webserver) and `server.py` (`DagsterServer` and `served_project`, the two together)."""
