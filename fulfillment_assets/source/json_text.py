"""JSON columns travel as JSON text in the source's Arrow tables; dlt's warning about it, dropped.

A JSON column (`shipment`, and any field `ColumnTypes` types JSON) is hinted `data_type: json`,
so the destination stores JSON, and its Arrow column holds the JSON text: that is how dlt itself
writes a json column to parquet, and pyarrow has no JSON type dlt reads as json (only nested
types, which arbitrary JSON does not fit). dlt's extractor reads the Arrow string as `text`,
finds the hint says `json`, keeps the hint (what is wanted), and warns on every load that
"several column hints were different". Every other column of the Arrow tables is built as its
hint declares (`id` not nullable included; `test_arrow_pages.py` keeps it so), so for this
resource the warning says only that: it is dropped, and dlt's INFO lines still name each column.
"""

from __future__ import annotations

import logging

from fulfillment_assets import settings

# dlt logs through the logger of this name (dlt.common.logger).
DLT_LOGGER = "dlt"
JSON_TEXT_WARNING = (
    f"In resource: {settings.RESOURCE_NAME}, when merging arrow schema with dlt schema, several "
    "column hints were different"
)


class JsonTextWarningFilter(logging.Filter):
    """Drops dlt's warning that the resource's Arrow types differ from its hints (JSON text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.WARNING and record.getMessage().startswith(JSON_TEXT_WARNING)
        )


def drop_json_text_warning() -> None:
    """Installs the filter on dlt's logger, once per process."""
    dlt_logger = logging.getLogger(DLT_LOGGER)
    if not any(isinstance(existing, JsonTextWarningFilter) for existing in dlt_logger.filters):
        dlt_logger.addFilter(JsonTextWarningFilter())
