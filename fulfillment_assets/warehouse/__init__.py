"""The destination: the dlt pipeline that loads it, the SQL written once for every dialect, and the
Dagster resource that queries it (with DuckDB's file lock and each run's liveness lock)."""
