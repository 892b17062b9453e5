"""What every typed record of the contract does: encode itself, and read a decoded record.

A record type is a frozen, slotted dataclass whose fields are exactly its newest Avro schema's
(``SCHEMA`` names the family; tests/schemas/test_records.py holds each type to its schema field
by field).  Nested Avro records are nested record types, named in ``NESTED`` so that
``from_record`` builds them; Avro arrays are tuples.  Timestamps are aware ``datetime``s (the
codec decodes ``timestamp-millis`` to those, and writes them back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar, Self

from schemas import codec


def at_ms(ms: int) -> datetime:
    """Milliseconds since the epoch as the aware UTC datetime a record holds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _plain(value: Any) -> Any:
    """A field's value as the Avro writer takes it (nested records as dicts, enums as text)."""
    if isinstance(value, Record):
        return value.to_record()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


class Record:
    """The encode/decode half shared by the record types (a mixin without fields or slots)."""

    __slots__ = ()
    SCHEMA: ClassVar[str] = ""  # the codec family; empty for a record only nested in another
    NESTED: ClassVar[Mapping[str, type[Record]]] = {}  # field -> its nested record type
    KEY: ClassVar[str] = "doc_id"  # the field whose text is the Kafka key
    # (``kafka_key``, not ``key``: two records have an object-store field named ``key``)

    def to_record(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @property
    def kafka_key(self) -> bytes:
        return str(getattr(self, self.KEY)).encode()

    def encode(self) -> bytes:
        """The Confluent-framed Avro bytes, written with the newest version of ``SCHEMA``."""
        return codec.encode(self.SCHEMA, self.to_record())

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        """From a decoded record (extra keys such as ``_schema`` are ignored; a field missing
        takes its default, and has none only when the record is not of this type)."""
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in record:
                continue
            value = record[f.name]
            nested = cls.NESTED.get(f.name)
            if isinstance(value, list):
                value = tuple(_nested(nested, item) for item in value)
            else:
                value = _nested(nested, value)
            values[f.name] = value
        return cls(**values)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """The record in ``data``; ValueError when it is not Avro of this record's family."""
        return cls.from_record(codec.decode(data, expected=cls.SCHEMA))


def _nested(kind: type[Record] | None, value: Any) -> Any:
    if kind is not None and isinstance(value, Mapping):
        return kind.from_record(value)
    return value
