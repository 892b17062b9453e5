"""Events on the wire: Avro in the Confluent format, one schema per topic (see schemas/)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from schemas import codec


def encode_event(schema: str, record: Mapping[str, Any]) -> bytes:
    return codec.encode(schema, record)


def decode_event(data: bytes) -> dict[str, Any]:
    """The record, with the schema it was written with under ``_schema``.

    The worker hands each event to every agent of its topic (a verdict to the tracker, the
    materializer and the rescan follower): the bytes are decoded once, and each caller gets a
    copy of its own (a shallow one: they change top-level fields at most)."""
    return dict(_decoded(data))


@functools.lru_cache(maxsize=1024)
def _decoded(data: bytes) -> dict[str, Any]:
    record = codec.decode(data)
    record["_schema"] = codec.schema_of(data)
    return record
