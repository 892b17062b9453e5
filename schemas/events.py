"""Events on the wire: Avro in the Confluent format, one schema per topic (see schemas/)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas import codec


def encode_event(schema: str, record: Mapping[str, Any]) -> bytes:
    return codec.encode(schema, record)


def decode_event(data: bytes) -> dict[str, Any]:
    """The record, with the schema it was written with under ``_schema``."""
    record = codec.decode(data)
    record["_schema"] = codec.schema_of(data)
    return record
