"""Events on the wire: Avro in the Confluent format, one schema per topic (see schemas/)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from schemas import codec, topics
from schemas.record import Record

R = TypeVar("R", bound=Record)


def encode_event(schema: str, record: Mapping[str, Any]) -> bytes:
    return codec.encode(schema, record)


def decode_event(data: bytes) -> dict[str, Any]:
    """The record, with the schema it was written with under ``_schema``.

    The worker hands each event to every agent of its topic (a document event to the
    extraction, the tracker and the materializer): the bytes are decoded once, and each caller
    gets a copy of its own (a shallow one: they change top-level fields at most)."""
    return dict(_decoded(data))


@functools.lru_cache(maxsize=1024)
def _decoded(data: bytes) -> dict[str, Any]:
    record = codec.decode(data)
    record["_schema"] = codec.schema_of(data)
    return record


def decode_as(record_type: type[R], data: bytes) -> R:
    """The typed record in an event; ValueError when it is not Avro of ``record_type``'s family.

    Cached like :func:`decode_event`; records are immutable, so every agent of a topic shares
    one (their ``meta`` mapping included: read it, never change it)."""
    cache_key: Any = record_type  # a class is hashable; mypy thinks type[R] may not be
    return cast(R, _typed(cache_key, data))


@functools.lru_cache(maxsize=1024)
def _typed(record_type: Any, data: bytes) -> Record:  # Any: mypy calls a class unhashable
    decoded: Record = record_type.decode(data)
    return decoded


def decode_record(data: bytes) -> Record:
    """The typed record in an event of any topic, by the schema family it was written with;
    ValueError when it is not Avro of a family with a record type (see schemas/topics.py)."""
    family = codec.schema_of(data)
    record_type = _RECORD_TYPES.get(family)
    if record_type is None:
        raise ValueError(f"no record type is declared for Avro schema {family!r}")
    return decode_as(record_type, data)


_RECORD_TYPES = {t.family: t.record for t in topics.CONTRACT}
