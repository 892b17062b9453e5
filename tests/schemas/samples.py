"""Records with a value in every field of their newest schema, for tests that must notice a
field added later (it gets a value too, so a component that drops it fails its test)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from schemas import codec
from schemas.record import Record

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
R = TypeVar("R", bound=Record)
_PRIMITIVES = {"string": "s", "long": 7, "int": 3, "boolean": True, "double": 1.5}


def sample(schema: Any) -> Any:
    """A value for every field of an Avro schema (the non-null branch of each union)."""
    if isinstance(schema, list):
        return sample(schema[-1])
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            return {f["name"]: sample(f["type"]) for f in schema["fields"]}
        if kind == "array":
            return [sample(schema["items"])]
        if kind == "map":
            return {"k": sample(schema["values"])}
        if schema.get("logicalType") == "timestamp-millis":
            return NOW
        return sample(kind)
    return _PRIMITIVES[schema]


def every_field_set(record_type: type[R], **values: Any) -> R:
    """A ``record_type`` with every field set (``values`` override the samples)."""
    newest = codec.parsed_schema(record_type.SCHEMA)
    return record_type.from_record({**sample(newest), **values})
