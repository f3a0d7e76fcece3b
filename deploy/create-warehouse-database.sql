-- Run once by the postgres image when it creates its cluster: the warehouse gets a database of
-- its own, next to Dagster's (POSTGRES_DB, "dagster").
CREATE DATABASE warehouse;
