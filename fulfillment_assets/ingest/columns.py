"""The raw table's columns, described once: the definitions' column schema of the raw asset,
and the descriptions the model tables reuse for the columns they copy.

Apart from `assets.py`, whose decorator builds the dlt source and pipeline, so that the models'
column metadata (`models/columns.py`) and the tests read them without building either.
"""

from dagster import TableColumn, TableColumnConstraints, TableSchema

from fulfillment_assets import settings

# The columns dlt adds to every row it loads.
DLT_COLUMN_DESCRIPTIONS = {
    settings.LOAD_ID: (
        "The dlt load that last wrote the row: the id of a load package (the Unix time it "
        "started), also in the dataset's `_dlt_loads` table."
    ),
    "_dlt_id": "dlt's unique id of the row.",
    settings.DELETED_AT: (
        "When a full sync first found the order missing from the API (UTC); NULL while the API "
        "returns it. The models leave such rows out."
    ),
}


def column_description(name: str) -> str:
    """Every raw column described: the documented ones, dlt's, variants and fields added later."""
    if name in settings.COLUMN_DESCRIPTIONS:
        return settings.COLUMN_DESCRIPTIONS[name]
    if name in DLT_COLUMN_DESCRIPTIONS:
        return DLT_COLUMN_DESCRIPTIONS[name]
    if "__v_" in name:
        column, data_type = name.rsplit("__v_", 1)
        return f"Values of `{column}` that arrived as {data_type} (a dlt variant column)."
    return "A field the API sends that the project does not document, kept as it arrived."


RAW_COLUMN_SCHEMA = TableSchema(
    columns=[
        TableColumn(
            name=name,
            # `id` has no declared type: the definitions show the first load's default for
            # integer ids; each materialization shows the table's own (dlt's schema).
            type=str(hints.get("data_type", settings.ID_TYPES[0])),
            description=column_description(name),
        )
        for name, hints in {**settings.CONTRACT_COLUMNS, **settings.DOCUMENTED_COLUMNS}.items()
    ]
    + [
        TableColumn(
            name=settings.LOAD_ID,
            type="text",
            description=column_description(settings.LOAD_ID),
            constraints=TableColumnConstraints(nullable=False),
        )
    ]
)
