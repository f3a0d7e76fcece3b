"""The raw table's load: the API and raw-table assets, newest versions kept, deletes marked, and
what each sync records."""
