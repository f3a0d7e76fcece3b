"""The tables built on the raw table with SQL (validated, rejected, a daily summary) and their
columns' meaning and lineage."""
