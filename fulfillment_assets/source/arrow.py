"""Pages of records to typed Arrow tables, with variant columns for values of another type.

Records become Arrow tables of 10,000 with the declared column types, so dlt skips per-row
normalization and loads parquet; a value of another type goes to a variant column
(`customer_id__v_bigint`), as dlt's normalizer would do, for the schema check to report.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import Any

import dlt
import orjson
import pyarrow as pa
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema import TColumnSchema

from fulfillment_assets import settings
from fulfillment_assets.display import shown
from fulfillment_assets.source.http import FulfillmentApiError
from fulfillment_assets.source.values import TIMESTAMP, fits_exactly, to_number, to_timestamps
from fulfillment_assets.source.values import parse_timestamp as _parse_timestamp

# Python types each dlt data type accepts from JSON; anything else is a type drift.
_NONE_TYPE = type(None)
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "bigint": (int,),
    "double": (float, int),
    "bool": (bool,),
    "text": (str,),
    "timestamp": (str,),
    "json": (dict, list),
}
_DLT_TYPE_OF: dict[type, str] = {
    int: "bigint",
    float: "double",
    bool: "bool",
    str: "text",
    dict: "json",
    list: "json",
}
_ARROW_TYPE_OF: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "json": pa.string(),  # JSON text; the column hint makes it JSON in the destination
    # Integers past what bigint (or a double) holds exactly, in a variant column: exact to 38
    # digits, so two ids never become one; longer ones are kept as their digits (text).
    "decimal": pa.decimal128(38, 0),
}
_DECIMAL_DIGITS = 38
_DECLARED_TYPES: dict[str, str] = {
    name: str(hints["data_type"])
    for name, hints in {**settings.CONTRACT_COLUMNS, **settings.DOCUMENTED_COLUMNS}.items()
    if "data_type" in hints
}
# The columns the project declares, `id` among them (its type is the walk's: `ColumnTypes`).
_DECLARED = {*settings.CONTRACT_COLUMNS, *settings.DOCUMENTED_COLUMNS}
ID_TYPE_SETTING = "SOURCES__FULFILLMENT__ID_TYPE"


class ColumnTypes:
    """The types of the fields the seed does not declare, fixed once for a whole walk.

    A field's type is the one the destination already holds (`stored`, dlt's schema of the
    table), else the one most of its values have in the first batch that has any (JSON when
    nested values are as many as any other; a double when numbers mix integers and floats); it
    is then kept for every later batch, so neither the record that comes first nor the batch
    decides it. `coerced` counts, per column, the values read as its type from another form
    (numeric text, ISO-8601 forms other than the common one, epoch numbers), for the run's
    metadata.
    """

    def __init__(
        self, stored: dict[str, str] | None = None, zone: str = "UTC", id_type: str | None = None
    ) -> None:
        self.types: dict[str, str] = {
            name: data_type for name, data_type in (stored or {}).items() if data_type in _ACCEPTS
        }
        self.zone = zone
        self.coerced: dict[str, int] = {}
        # `id`: as stored, else as configured, else learned from the first batch (`ids_typed`).
        stored_id = self.types.pop("id", None)
        if stored_id and id_type and stored_id != id_type:
            raise FulfillmentApiError(
                f"{ID_TYPE_SETTING} is {id_type}, but the raw table's `id` is {stored_id}: a "
                f"table holds one type of id. Unset {ID_TYPE_SETTING} (or set it to "
                f"{stored_id}), or load into a new dataset"
            )
        self.id_type = stored_id or id_type
        self.id_type_learned = self.id_type is None

    def declared(self, name: str) -> str:
        """The type of a declared column: `id`'s once `ids_typed` has seen a batch."""
        return (self.id_type or "bigint") if name == "id" else _DECLARED_TYPES[name]

    def ids_typed(self, page: list[dict[str, Any]]) -> None:
        """The page's ids as the `id` column's type, in place; the first batch of a first
        load decides that type when nothing else did: text if any id is text, else bigint.

        An integer id in a text column is kept as its digits (nothing lost); text in an integer
        column is read as an integer where it is one, else the run fails naming the id and the
        setting (a table holds one type of id)."""
        kinds = set(map(type, [record.get("id") for record in page]))
        if self.id_type is None and kinds:
            self.id_type = "text" if str in kinds else "bigint"
        if self.id_type == "text" and int in kinds:
            for record in page:
                if type(record.get("id")) is int:
                    record["id"] = str(record["id"])
        elif self.id_type == "bigint" and str in kinds:
            for record in page:
                record_id = record.get("id")
                if type(record_id) is str:
                    number = to_number(record_id, "bigint")
                    if number is None:
                        raise self._text_in_integer_ids(record_id)
                    record["id"] = number

    def _text_in_integer_ids(self, record_id: str) -> FulfillmentApiError:
        how = "learned from the first batch of the first load" if self.id_type_learned else ""
        return FulfillmentApiError(
            f"the API sent the id {record_id[:40]!r}, but the raw table's `id` holds integers "
            f"(bigint{', ' + how if how else ''}): a table holds one type of id. If this API's "
            f"ids are text, set {ID_TYPE_SETTING}=text and load into a new dataset (or drop "
            "the raw table and its _versions table); nothing of this run was loaded"
        )

    def of(self, name: str, values: list[Any]) -> str | None:
        if name == "id":
            return self.declared(name)
        declared = _DECLARED_TYPES.get(name) or self.types.get(name)
        if declared is not None:
            return declared
        counts: dict[str, int] = {}
        for value_type, count in _type_counts(values).items():
            if value_type is not _NONE_TYPE:
                data_type = _DLT_TYPE_OF.get(value_type, "text")
                counts[data_type] = counts.get(data_type, 0) + count
        if not counts:
            return None  # only nulls so far: dlt cannot type the column either
        if "double" in counts and "bigint" in counts:
            counts["double"] += counts.pop("bigint")
        # Most values first; ties by a fixed order, never by which record came first.
        chosen = max(counts, key=lambda t: (counts[t], -_TIE_ORDER.index(t)))
        self.types[name] = chosen
        return chosen

    def count(self, name: str, coerced: int) -> None:
        if coerced:
            self.coerced[name] = self.coerced.get(name, 0) + coerced


_TIE_ORDER = ("json", "text", "double", "bigint", "bool")


def _type_counts(values: list[Any]) -> dict[type, int]:
    counts: dict[type, int] = {}
    for value_type in map(type, values):
        counts[value_type] = counts.get(value_type, 0) + 1
    return counts


def page_to_arrow(page: list[dict[str, Any]], types: ColumnTypes | None = None) -> pa.Table:
    """Records as an Arrow table with the declared column types (`types` for the others).

    A value of another type than its column's that cannot be read as it (values.py) goes to a
    variant column `<name>__v_<type>`, as dlt's normalizer does for rows, so a type drift in the
    API is kept and visible to the checks. Nested objects and lists become JSON text.
    """
    types = types or ColumnTypes()
    types.ids_typed(page)
    names = list(page[0]) if page else []
    if page and set().union(*page).difference(names):
        # Rare: fields that only some records have, kept in order of first appearance.
        names = list(dict.fromkeys(chain.from_iterable(page)))
    columns = _declared_columns(page, [n for n in names if n in _DECLARED], types)
    if columns is None:  # a value of another type: column by column, drift to variants
        columns = {}
        for name in names:
            columns.update(_typed_column(page, name, types))
    else:
        for name in names:
            if name not in _DECLARED:
                columns.update(_typed_column(page, name, types))
    renamed = colliding_fields(names)
    if renamed:
        columns = {_renamed(key, renamed): values for key, values in columns.items()}
    return _with_required_id(pa.Table.from_pydict(columns))


def _with_required_id(table: pa.Table) -> pa.Table:
    """The table with `id` not nullable, as the resource's hints declare it (every record has
    one: the page check fails a page without), so dlt finds the Arrow schema and the hints
    agreeing."""
    position = table.schema.get_field_index("id")
    if position < 0:
        return table
    return table.cast(table.schema.set(position, table.schema.field(position).with_nullable(False)))


_NAMING = NamingConvention()
COLLISION_SUFFIX = "__collision_"


# Columns of the project's and dlt's own: an API field named so would overwrite their meaning
# (`_deleted_at` marks deletes, `_dlt_load_id` names the load) or meet the column a model adds
# beside the raw ones (`rejection_reasons`: PostgreSQL refuses the table, DuckDB renames one).
PROJECT_COLUMNS = frozenset(
    {settings.DELETED_AT, settings.LOAD_ID, "_dlt_id", settings.REJECTION_REASONS}
)
# Where fields whose names normalize to nothing (`""`, `" "`) go: `empty_field_name__collision_N`.
EMPTY_NAME_COLUMN = "empty_field_name"


def is_project_column(column: str) -> bool:
    """A column the project or dlt writes, never an API field's."""
    return column in PROJECT_COLUMNS or column.startswith("_dlt_")


def colliding_fields(names: list[str]) -> dict[str, str]:
    """Fields whose names normalize onto another's column: field -> the distinct column it gets.

    dlt would fail the run (NameNormalizationCollision) on `customerId` beside `customer_id`. The
    field whose name is the column's already (or a declared column) keeps it; the others, in
    sorted order, get `<column>__collision_1`, `__collision_2`, ... A field named after a column
    of the project's or dlt's own (`_deleted_at`, `_dlt_load_id`, `_dlt_*`, the models'
    `rejection_reasons`) never gets that
    column, and a field whose name is empty gets `empty_field_name__collision_N`.
    """
    by_column: dict[str, list[str]] = {}
    for name in names:
        by_column.setdefault(_NAMING.normalize_path(name) or EMPTY_NAME_COLUMN, []).append(name)
    renamed: dict[str, str] = {}
    for column, fields in by_column.items():
        if is_project_column(column):
            others = sorted(fields)
        elif column == EMPTY_NAME_COLUMN:
            others = sorted(field for field in fields if _NAMING.normalize_path(field) == "")
        elif column in fields or column in _DECLARED:
            others = sorted(field for field in fields if field != column)
        elif len(fields) > 1:
            others = sorted(fields[1:])  # the first one seen keeps the column
        else:
            continue  # plain normalization (`warehouseCode` -> `warehouse_code`)
        for number, field in enumerate(others, start=1):
            renamed[field] = f"{column}{COLLISION_SUFFIX}{number}"
    return renamed


def _renamed(key: str, renamed: dict[str, str]) -> str:
    """A column key (a field, or its variant `<field>__v_<type>`) under its field's new name."""
    field, variant, suffix = key.partition("__v_")
    return f"{renamed[field]}{variant}{suffix}" if field in renamed else key


def collision_hints(table: pa.Table, page_fields: list[str]) -> Any:
    """The table, with a description on each collision column naming the field it holds."""
    renamed = colliding_fields(page_fields)
    if not renamed:
        return table
    columns: dict[str, TColumnSchema] = {
        column: {"name": column, "description": _collision_description(field, column)}
        for field, column in renamed.items()
    }
    return dlt.mark.with_hints(table, dlt.mark.make_hints(columns=columns))


def _collision_description(field: str, column: str) -> str:
    """What a collision column holds, for the schema and `field_names_distinct`."""
    quoted = repr(field) if not field.strip() else f"`{shown(field, 60)}`"
    target = column.partition(COLLISION_SUFFIX)[0]
    if is_project_column(target):
        return (
            f"API field {quoted}, named after the column `{target}` of the project's or dlt's own"
        )
    if target == EMPTY_NAME_COLUMN and not _NAMING.normalize_path(field):
        return f"API field {quoted}, whose name is empty"
    return f"API field {quoted}, whose name normalizes onto `{target}`"


# What the documented columns convert to in one C-level pass (timestamps as text, parsed after);
# JSON columns go column by column.
_FAST_ARROW_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "double": pa.float64(),
    "text": pa.string(),
    "timestamp": pa.string(),
}


def _declared_columns(
    page: list[dict[str, Any]], names: list[str], types: ColumnTypes
) -> dict[str, pa.Array] | None:
    """The documented columns in one C-level conversion, or None if any value does not fit.

    pyarrow refuses text where a number belongs and a number where text belongs, but it turns a
    float into an integer and a bool into 1.0 silently: numeric columns other than `id` (whose
    type the page check enforces) get their value types checked first.
    """
    fast = {
        name: _FAST_ARROW_TYPES[types.declared(name)]
        for name in names
        if types.declared(name) in _FAST_ARROW_TYPES
    }
    for name, arrow_type in fast.items():
        if pa.types.is_string(arrow_type) or name == "id":
            continue
        accepted = _ACCEPTS[types.declared(name)]
        values = [record.get(name) for record in page]
        if not _all_of_types(values, accepted) or not _integers_fit(values, types.declared(name)):
            return None
    try:
        table = pa.Table.from_pylist(page, schema=pa.schema(list(fast.items())))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    columns: dict[str, pa.Array] = {}
    for name in names:
        if name not in fast:
            typed = _typed_column(page, name, types)
            if set(typed) != {name}:
                return None
            columns[name] = typed[name]
            continue
        column = table.column(name).combine_chunks()
        if types.declared(name) == "timestamp":
            try:
                column = column.cast(TIMESTAMP)  # the common form, in one C-level cast
            except pa.ArrowInvalid:
                # Other ISO-8601 forms (no offset, 7-9 digits, ...): still vectorized.
                column, unparsed = to_timestamps(column, types.zone)
                if unparsed:
                    return None
                types.count(name, len(column) - column.null_count)
        columns[name] = column
    return columns


def _all_of_types(values: list[Any], accepted: tuple[type, ...]) -> bool:
    """Whether every value is None or of an accepted type (one C-level pass over the values)."""
    return all(t in accepted or t is _NONE_TYPE for t in set(map(type, values)))


def _integers_fit(values: list[Any], data_type: str) -> bool:
    """Whether every integer among the values is held exactly by a bigint / double column."""
    if data_type not in ("bigint", "double"):
        return True
    integers = [value for value in values if type(value) is int]
    return not integers or (
        fits_exactly(min(integers), data_type) and fits_exactly(max(integers), data_type)
    )


def _variant_of(value: Any) -> tuple[str, Any]:
    """The variant column type of a value its column cannot take, and the value as stored."""
    if type(value) is int and not fits_exactly(value, "bigint"):
        if abs(value) < 10**_DECIMAL_DIGITS:
            return "decimal", value
        return "text", str(value)
    return _DLT_TYPE_OF.get(type(value), "text"), value


def _typed_column(page: list[dict[str, Any]], name: str, types: ColumnTypes) -> dict[str, pa.Array]:
    """One column of its declared (or walk's, `ColumnTypes`) type; values of another type read
    as it where that is safe (values.py), the others in variant columns."""
    values = [record.get(name) for record in page]
    data_type = types.of(name, values)
    if data_type is None:
        return {}
    accepts = _ACCEPTS[data_type]
    drifted: dict[str, list[Any]] = {}
    coerced = 0
    if not _all_of_types(values, accepts) or not _integers_fit(values, data_type):
        for position, value in enumerate(values):
            if value is None or (
                type(value) in accepts
                and (type(value) is not int or fits_exactly(value, data_type))
            ):
                continue
            readable = _read_as(value, data_type)
            if readable is not None:
                values[position] = readable
                coerced += 1
                continue
            variant, stored = _variant_of(value)
            drifted.setdefault(variant, [None] * len(values))[position] = stored
            values[position] = None
    if data_type == "timestamp":
        column, unparsed = to_timestamps(pa.array(values, pa.string()), types.zone)
        if unparsed:  # text that is no timestamp: kept as text, visible to the checks as drift
            texts = drifted.setdefault("text", [None] * len(values))
            for position in unparsed:
                texts[position] = values[position]
        columns = {name: column}
    else:
        columns = {name: _arrow_array(values, data_type)}
    types.count(name, coerced)
    for variant, variant_values in drifted.items():
        columns[f"{name}__v_{variant}"] = _arrow_array(variant_values, variant)
    return columns


def _read_as(value: Any, data_type: str) -> Any:
    """A value of another type in the form the column takes, or None where that is not safe."""
    if data_type in ("double", "bigint"):
        return to_number(value, data_type)
    if data_type == "timestamp":  # an epoch number; as text, so one parse reads the column
        stamp = _parse_timestamp(value)
        return None if stamp is None else stamp.isoformat()
    return None


def _arrow_array(values: list[Any], data_type: str) -> pa.Array:
    if data_type == "json":
        values = [None if v is None else orjson.dumps(v).decode() for v in values]
    if data_type == "timestamp":
        return pa.array(values, pa.string()).cast(TIMESTAMP)
    return pa.array(values, _ARROW_TYPE_OF.get(data_type, pa.string()))


def arrow_batches(
    records: Iterable[dict[str, Any]], batch_rows: int, types: ColumnTypes | None = None
) -> Iterator[Any]:
    """Records (as a dlt resource yields them, page after page) in Arrow tables of `batch_rows`.

    dlt spends ~10 ms of schema work on every item it extracts, whatever its size: on pages of
    100 records that is most of the run. Batches keep that small and memory bounded. `types`
    keeps the undeclared fields' types the same in every batch of the walk; a field typed JSON
    is hinted so (its Arrow column is JSON text), so the destination stores it as JSON and the
    next run reads the same type back.
    """
    types = types or ColumnTypes()
    records = iter(records)
    while batch := list(islice(records, batch_rows)):
        table = page_to_arrow(batch, types)
        json_fields = [
            name
            for name in table.column_names
            if name not in _DECLARED and types.types.get(name) == "json"
        ]
        json_hints: dict[str, TColumnSchema] = {
            name: {"name": name, "data_type": "json"} for name in json_fields
        }
        hinted: Any = table
        if COLLISION_SUFFIX in "".join(table.column_names):
            hinted = collision_hints(table, list(dict.fromkeys(chain.from_iterable(batch))))
            if json_hints:  # one set of hints per item: the JSON ones join the collisions'
                hinted.meta.hints["columns"].update(json_hints)
        elif json_hints:
            hinted = dlt.mark.with_hints(table, dlt.mark.make_hints(columns=json_hints))
        yield hinted
