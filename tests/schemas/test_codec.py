"""The Avro codec: Confluent wire format with ids declared in schemas/codec.py."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from schemas import codec

NOW_MS = 1_700_000_000_123
NOW = datetime.fromtimestamp(NOW_MS / 1000, tz=UTC)

VERDICT = {
    "doc_id": "d-1",
    "tenant": "acme",
    "scanner": "clamav-1",
    "vendor": "clamav",
    "verdict": "infected",
    "result": "Eicar-Signature",
    "engine_version": "1.0.7",
    "signatures_version": "27500",
    "start_at": NOW_MS,
    "end_at": NOW_MS + 5,
    "reused_from": None,
}
REQUESTED = {
    "doc_id": "d-1",
    "tenant": "acme",
    "file_name": "report.pdf",
    "file_size": 3 << 30,  # a long, beyond 32 bits
    "content_type": "application/pdf",
    "created_at": NOW_MS,
}
STATUS = {"doc_id": "d-1", "tenant": "acme", "status": "failed", "reason": "too big", "at": NOW}


def test_every_declared_schema_has_a_file_and_parses() -> None:
    schema_dir = Path(codec.__file__).parent
    assert {p.stem for p in schema_dir.glob("*.avsc")} == set(codec.SCHEMA_IDS.values())
    for sid in codec.SCHEMA_IDS:
        assert codec.parsed_by_id(sid)["name"].startswith("io.intellidox.")


def _sample(schema: Any) -> Any:
    """A value of every field of an Avro schema (enough to exercise resolution)."""
    if isinstance(schema, list):
        return _sample(schema[-1])  # the non-null branch of ["null", X]
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            return {f["name"]: _sample(f["type"]) for f in schema["fields"]}
        if kind == "array":
            return [_sample(schema["items"])]
        if kind == "map":
            return {"k": _sample(schema["values"])}
        if kind == "enum":
            return schema["symbols"][0]
        if schema.get("logicalType") == "timestamp-millis":
            return 1_700_000_000_000
        return _sample(kind)
    return {
        "string": "s",
        "long": 1,
        "int": 1,
        "boolean": True,
        "double": 1.5,
        "float": 1.5,
        "bytes": b"b",
        "null": None,
    }[schema]


@pytest.mark.parametrize("name", sorted({codec.family(s) for s in codec.SCHEMA_IDS.values()}))
def test_every_older_version_decodes_into_the_newest(name: str) -> None:
    # Backward compatibility: the newest version reads every record an older one wrote.
    newest = codec.schema_id(name)
    for sid in codec.versions(name):
        raw = json.loads(
            (Path(codec.__file__).parent / f"{codec.SCHEMA_IDS[sid]}.avsc").read_text()
        )
        record = _sample(raw)
        out = io.BytesIO()
        out.write(struct.pack(">bI", 0, sid))
        fastavro.schemaless_writer(out, codec.parsed_by_id(sid), record)
        decoded = codec.decode(out.getvalue(), expected=name)
        newest_fields = {f["name"] for f in codec.parsed_by_id(newest)["fields"]}
        assert set(decoded) == newest_fields


def test_an_old_confirmed_record_gets_no_pinned_version() -> None:
    old = {
        "doc_id": "d",
        "tenant": "t",
        "file_name": "f",
        "file_size": 1,
        "content_type": None,
        "bucket": "b",
        "key": "k",
        "created_at": 1,
        "uploaded_at": 1,
    }
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, 4))
    fastavro.schemaless_writer(out, codec.parsed_by_id(4), old)
    assert codec.schema_of(out.getvalue()) == "docs_confirmed"
    assert codec.decode(out.getvalue())["version_id"] is None
    assert codec.schema_id("docs_confirmed") == 10


def test_ids_are_stable() -> None:
    # Ids are written into every message forever; changing one orphans old data.
    first = {1: "docs_requested", 2: "docs_status", 3: "scan_verdict", 4: "docs_confirmed"}
    assert first.items() <= codec.SCHEMA_IDS.items()
    assert len(set(codec.SCHEMA_IDS.values())) == len(codec.SCHEMA_IDS)


@pytest.mark.parametrize(
    ("name", "record"),
    [("scan_verdict", VERDICT), ("docs_requested", REQUESTED), ("docs_status", STATUS)],
)
def test_round_trip(name: str, record: dict[str, object]) -> None:
    decoded = codec.decode(codec.encode(name, record), expected=name)
    for key, value in record.items():
        got = decoded[key]
        if isinstance(got, datetime):  # timestamp-millis decodes to aware UTC datetimes
            assert got.tzinfo is not None
            got = round(got.timestamp() * 1000)
            value = round(value.timestamp() * 1000) if isinstance(value, datetime) else value
        assert got == value


def test_nullable_fields_keep_values() -> None:
    reused = codec.decode(codec.encode("scan_verdict", {**VERDICT, "reused_from": "d-0"}))
    assert reused["reused_from"] == "d-0"


def test_wire_format_header_and_body() -> None:
    data = codec.encode("docs_status", STATUS)
    assert data[0] == 0
    assert struct.unpack(">I", data[1:5])[0] == 2
    # Avro binary: strings are zigzag-varint length + bytes, so "d-1" is 0x06 'd' '-' '1'.
    assert data[5:9] == b"\x06d-1"
    assert codec.schema_of(data) == "docs_status"


def test_bad_magic_byte_is_rejected() -> None:
    data = bytearray(codec.encode("docs_status", STATUS))
    data[0] = 1
    with pytest.raises(ValueError, match="magic byte 1"):
        codec.decode(bytes(data))


def test_unknown_schema_id_is_rejected() -> None:
    data = b"\x00" + struct.pack(">I", 999) + codec.encode("docs_status", STATUS)[5:]
    with pytest.raises(ValueError, match="unknown Avro schema id 999"):
        codec.decode(data)


def test_short_and_plain_json_payloads_are_rejected() -> None:
    with pytest.raises(ValueError, match="5-byte header"):
        codec.decode(b"\x00\x00")
    with pytest.raises(ValueError, match="magic byte"):
        codec.decode(b'{"doc_id": "d-1"}')


def test_truncated_or_padded_body_is_rejected() -> None:
    data = codec.encode("scan_verdict", VERDICT)
    with pytest.raises(ValueError, match="corrupt"):
        codec.decode(data[:-3])
    with pytest.raises(ValueError, match="trailing bytes"):
        codec.decode(data + b"\x00")


def test_wrong_expected_schema_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected an Avro 'scan_verdict'"):
        codec.decode(codec.encode("docs_status", STATUS), expected="scan_verdict")


def test_unknown_schema_name_and_bad_record_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown Avro schema 'nope'"):
        codec.encode("nope", {})
    with pytest.raises(ValueError, match="does not match"):
        codec.encode("docs_requested", {**REQUESTED, "file_size": "big"})


def test_an_old_verdict_decodes_as_no_rescan_and_not_stale() -> None:
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, 3))  # scan_verdict v1, as scanners wrote it before v2
    fastavro.schemaless_writer(out, codec.parsed_by_id(3), VERDICT)
    decoded = codec.decode(out.getvalue(), expected="scan_verdict")
    assert decoded["rescan"] is None and decoded["signatures_stale"] is False
    rescan = {"previous_verdict": "clean", "previous_signatures_version": "1"}
    rescan |= {"reason": "signatures", "job_id": "j"}
    again = codec.decode(codec.encode("scan_verdict", {**VERDICT, "rescan": rescan}))
    assert again["rescan"] == rescan


def test_decoding_the_same_event_twice_gives_separate_records() -> None:
    """Decoded once per event (cached), but a caller that changes its record changes no one
    else's."""
    from schemas.events import decode_event, encode_event

    data = encode_event(
        "docs_status",
        {
            "doc_id": "d",
            "tenant": "t",
            "status": "done",
            "reason": None,
            "expected": 3,
            "at": datetime.now(UTC),
        },
    )
    first = decode_event(data)
    first["status"] = "changed"
    second = decode_event(data)
    assert second["status"] == "done" and second["_schema"] == "docs_status"
    assert second is not first
