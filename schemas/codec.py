"""Avro events in the Confluent wire format, without a schema registry.

Wire format: magic byte ``0``, the schema id as 4 bytes big-endian, then the Avro binary body
(schemaless).  Any Confluent-aware consumer (analysts' tools) reads it once the same ids are
registered there.  Here the ids are declared in :data:`SCHEMA_IDS`, once and forever: an id is
never reused or re-pointed.  A changed schema gets a new ``.avsc`` file and a new id, so every
byte ever written stays readable with the exact schema it was written with.

``timestamp-millis`` fields take an ``int`` (ms since the epoch) or an aware ``datetime`` and
decode to an aware UTC ``datetime``.
"""

from __future__ import annotations

import functools
import io
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fastavro

MAGIC = 0
_HEADER = struct.Struct(">bI")  # magic byte, schema id

# id -> schema name (= ``schemas/<name>.avsc``).  Append only; ids are stable forever.
SCHEMA_IDS: dict[int, str] = {
    1: "docs_requested",
    2: "docs_status",
    3: "scan_verdict",
    4: "docs_confirmed",
    5: "docs_metadata",
    6: "scan_request",
    7: "scanner_heartbeat",
    8: "extractor_script",
    9: "docs_reextract",
}
_IDS_BY_NAME = {name: schema_id for schema_id, name in SCHEMA_IDS.items()}
_DIR = Path(__file__).resolve().parent


def schema_id(name: str) -> int:
    try:
        return _IDS_BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown Avro schema {name!r}; known: {sorted(_IDS_BY_NAME)}") from None


@functools.cache
def parsed_schema(name: str) -> Any:
    """The parsed schema for ``name`` (read from its ``.avsc`` once)."""
    schema_id(name)  # only declared schemas
    raw = json.loads((_DIR / f"{name}.avsc").read_text())
    return fastavro.parse_schema(raw)


def encode(name: str, record: Mapping[str, Any]) -> bytes:
    """Serialize ``record`` with schema ``name``; raises ValueError when it does not fit."""
    out = io.BytesIO()
    out.write(_HEADER.pack(MAGIC, schema_id(name)))
    try:
        fastavro.schemaless_writer(out, parsed_schema(name), dict(record))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"record does not match Avro schema {name!r}: {exc}") from exc
    return out.getvalue()


def schema_of(data: bytes) -> str:
    """The schema name a message was written with (checks the header only)."""
    if len(data) < _HEADER.size:
        raise ValueError(f"not a Confluent Avro message: {len(data)} bytes, need a 5-byte header")
    magic, sid = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"not a Confluent Avro message: magic byte {magic}, expected {MAGIC}")
    if sid not in SCHEMA_IDS:
        raise ValueError(f"unknown Avro schema id {sid}; known ids: {sorted(SCHEMA_IDS)}")
    return SCHEMA_IDS[sid]


def decode(data: bytes, expected: str | None = None) -> dict[str, Any]:
    """Deserialize a message; with ``expected``, also insist it was written with that schema."""
    name = schema_of(data)
    if expected is not None and name != expected:
        raise ValueError(f"expected an Avro {expected!r} message, got {name!r}")
    body = io.BytesIO(data[_HEADER.size :])
    try:
        record = fastavro.schemaless_reader(body, parsed_schema(name))
    except (EOFError, ValueError, IndexError, UnicodeDecodeError, StopIteration) as exc:
        raise ValueError(f"corrupt Avro {name!r} message: {exc!r}") from exc
    if body.tell() != len(data) - _HEADER.size:
        raise ValueError(f"corrupt Avro {name!r} message: trailing bytes after the record")
    if not isinstance(record, dict):
        raise ValueError(f"Avro {name!r} message did not decode to a record")
    return record
