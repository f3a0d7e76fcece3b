"""The checks on the raw table, the row rules the models share, and what the checks remember."""
