"""Avro events in the Confluent wire format, without a schema registry.

Wire format: magic byte ``0``, the schema id as 4 bytes big-endian, then the Avro binary body
(schemaless).  Any Confluent-aware consumer (analysts' tools) reads it once the same ids are
registered there.  Here the ids are declared in :data:`SCHEMA_IDS`, once and forever: an id is
never reused or re-pointed.  A changed schema gets a new ``<name>.vN.avsc`` file and a new id,
so every byte ever written stays readable with the exact schema it was written with; it is
decoded into the newest version of its family by Avro schema resolution (a field added later
takes its default), so consumers see one shape whatever version a record was written with.

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
    10: "docs_confirmed.v2",  # + version_id: the object version pinned at confirm
    11: "docs_reextract.v2",  # + version_id
    12: "scan_verdict.v2",  # + rescan (what a rescan replaced), signatures_stale (reuse)
    13: "rescan_request",
    14: "scanner_heartbeat.v2",  # + accepts: the file types a scanner is asked about
    15: "scan_request.v2",  # + unsupported: scanners answered unsupported instead of asked
    16: "docs_metadata.v2",  # + also_types: the other types readers find in the same bytes
}
_DIR = Path(__file__).resolve().parent


def family(file_stem: str) -> str:
    """``docs_confirmed.v2`` -> ``docs_confirmed``: the name code dispatches on."""
    return file_stem.split(".v", 1)[0]


# family -> the id of its newest version (what encode writes and decode resolves into).
_LATEST: dict[str, int] = {}
for _sid, _stem in sorted(SCHEMA_IDS.items()):
    _LATEST[family(_stem)] = _sid


def schema_id(name: str) -> int:
    """The id a record of family ``name`` is written with today (its newest version)."""
    try:
        return _LATEST[name]
    except KeyError:
        raise ValueError(f"unknown Avro schema {name!r}; known: {sorted(_LATEST)}") from None


def versions(name: str) -> list[int]:
    """Every id of family ``name``, oldest first."""
    return sorted(sid for sid, stem in SCHEMA_IDS.items() if family(stem) == name)


@functools.cache
def parsed_by_id(sid: int) -> Any:
    """The parsed schema with id ``sid`` (read from its ``.avsc`` once)."""
    raw = json.loads((_DIR / f"{SCHEMA_IDS[sid]}.avsc").read_text())
    return fastavro.parse_schema(raw)


def parsed_schema(name: str) -> Any:
    """The newest parsed schema of family ``name``."""
    return parsed_by_id(schema_id(name))


def encode(name: str, record: Mapping[str, Any]) -> bytes:
    """Serialize ``record`` with the newest schema of ``name``; ValueError when it does not fit."""
    out = io.BytesIO()
    out.write(_HEADER.pack(MAGIC, schema_id(name)))
    try:
        fastavro.schemaless_writer(out, parsed_schema(name), dict(record))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"record does not match Avro schema {name!r}: {exc}") from exc
    return out.getvalue()


def schema_of(data: bytes) -> str:
    """The schema family a message was written with (checks the header only)."""
    return family(SCHEMA_IDS[_writer_id(data)])


def _writer_id(data: bytes) -> int:
    if len(data) < _HEADER.size:
        raise ValueError(f"not a Confluent Avro message: {len(data)} bytes, need a 5-byte header")
    magic, sid = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"not a Confluent Avro message: magic byte {magic}, expected {MAGIC}")
    if sid not in SCHEMA_IDS:
        raise ValueError(f"unknown Avro schema id {sid}; known ids: {sorted(SCHEMA_IDS)}")
    return int(sid)


def decode(data: bytes, expected: str | None = None) -> dict[str, Any]:
    """Deserialize a message; with ``expected``, also insist it was written with that schema."""
    writer = _writer_id(data)
    name = family(SCHEMA_IDS[writer])
    if expected is not None and name != expected:
        raise ValueError(f"expected an Avro {expected!r} message, got {name!r}")
    body = io.BytesIO(data[_HEADER.size :])
    reader = parsed_schema(name)
    try:
        if writer == schema_id(name):
            record = fastavro.schemaless_reader(body, reader)
        else:  # an older version: resolve into the newest (added fields take defaults)
            record = fastavro.schemaless_reader(body, parsed_by_id(writer), reader)
    except (EOFError, ValueError, IndexError, UnicodeDecodeError, StopIteration) as exc:
        raise ValueError(f"corrupt Avro {name!r} message: {exc!r}") from exc
    if body.tell() != len(data) - _HEADER.size:
        raise ValueError(f"corrupt Avro {name!r} message: trailing bytes after the record")
    if not isinstance(record, dict):
        raise ValueError(f"Avro {name!r} message did not decode to a record")
    return record
