"""Typed records are held to their Avro schemas, and survive the wire both ways."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from schemas import codec, topics
from schemas.documents import DocsConfirmed, DocsMetadata, DocsStatus
from schemas.events import decode_event
from schemas.record import Record, at_ms
from schemas.records import RescanOf, ScannerHeartbeat, ScanVerdict, accepts_type
from schemas.scans import ExpectedScanner, ScanRequest
from schemas.scripts import ExtractorScript
from tests.schemas.samples import sample

SCHEMAS = Path(__file__).parents[2] / "schemas"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TYPED = [t.record for t in topics.CONTRACT]


def _newest(family: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{codec.SCHEMA_IDS[codec.schema_id(family)]}.avsc").read_text())


def _field_names(schema: dict[str, Any]) -> list[str]:
    return [f["name"] for f in schema["fields"]]


def _nested_schema(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The record schema of field ``name`` (in a union, an array, or on its own)."""
    kind = next(f["type"] for f in schema["fields"] if f["name"] == name)
    branches = kind if isinstance(kind, list) else [kind]
    for branch in branches:
        if isinstance(branch, dict) and branch["type"] == "array":
            branch = branch["items"]
        if isinstance(branch, dict) and branch["type"] == "record":
            return branch
    raise AssertionError(f"field {name} holds no record")


@pytest.mark.parametrize("record_type", TYPED, ids=lambda t: t.__name__)
def test_a_record_has_exactly_its_newest_schemas_fields_in_order(
    record_type: type[Record],
) -> None:
    schema = _newest(record_type.SCHEMA)
    assert [f.name for f in fields(record_type)] == _field_names(schema)  # type: ignore[arg-type]
    for name, nested in record_type.NESTED.items():
        nested_fields = [f.name for f in fields(nested)]  # type: ignore[arg-type]
        assert nested_fields == _field_names(_nested_schema(schema, name))


@pytest.mark.parametrize("record_type", TYPED, ids=lambda t: t.__name__)
def test_every_record_survives_the_wire_with_every_field_set(record_type: type[Record]) -> None:
    record = record_type.from_record(sample(_newest(record_type.SCHEMA)))
    assert all(getattr(record, f.name) is not None for f in fields(record))  # type: ignore[arg-type]
    assert record_type.decode(record.encode()) == record
    assert record_type.from_record(decode_event(record.encode())) == record


def test_a_record_of_another_family_is_refused() -> None:
    status = DocsStatus("d", "t", "done", None, 2, NOW)
    with pytest.raises(ValueError, match="expected an Avro 'docs_metadata'"):
        DocsMetadata.decode(status.encode())


def test_nested_records_and_arrays_come_back_typed_and_immutable() -> None:
    request = ScanRequest(
        "d", "t", "f.pdf", 1, None, None, "a" * 64, "http://s3/x", NOW,
        (ExpectedScanner("clamav", NOW),), NOW, reused=("yara",),
    )  # fmt: skip
    back = ScanRequest.decode(request.encode())
    assert back.scanners == (ExpectedScanner("clamav", NOW),) and back.reused == ("yara",)
    assert back.requested_at == NOW and back.kafka_key == b"d"


def test_keys_are_what_the_contract_says() -> None:
    script = ExtractorScript("v2-abc", "v2.py", "ab", 10, NOW)
    assert script.kafka_key == b"version:v2-abc"
    assert DocsConfirmed("d", "t", "f", 1, None, "b", "k", NOW, NOW).kafka_key == b"d"


def test_an_old_confirmed_record_reads_without_a_pinned_version() -> None:
    old = {k: v for k, v in sample(_newest("docs_confirmed")).items() if k != "version_id"}
    first = codec.versions("docs_confirmed")[0]
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, first))
    fastavro.schemaless_writer(out, codec.parsed_by_id(first), old)
    assert DocsConfirmed.decode(out.getvalue()).version_id is None


def test_a_verdict_survives_the_wire() -> None:
    verdict = ScanVerdict(
        "d",
        "t",
        "clamav",
        "Cisco",
        "malicious",
        "Eicar",
        "1.4",
        "27000",
        NOW,
        NOW,
        rescan=RescanOf("clean", "26999", "signatures", "job-1"),
    )
    decoded = decode_event(verdict.encode())
    assert decoded["_schema"] == "scan_verdict"
    assert ScanVerdict.from_record(decoded) == verdict
    assert verdict.kafka_key == b"d"


def test_a_verdict_of_the_first_schema_version_reads_with_defaults() -> None:
    old = {
        "doc_id": "d",
        "tenant": "t",
        "scanner": "s",
        "vendor": "v",
        "verdict": "clean",
        "result": "",
        "engine_version": "1",
        "signatures_version": "1",
        "start_at": NOW,
        "end_at": NOW,
        "reused_from": None,
    }
    first = codec.versions("scan_verdict")[0]  # as scanners wrote it before v2
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, first))
    fastavro.schemaless_writer(out, codec.parsed_by_id(first), old)
    verdict = ScanVerdict.from_record(decode_event(out.getvalue()))
    assert verdict.rescan is None and verdict.signatures_stale is False


def test_a_timeout_is_a_timeout_verdict_and_nothing_else() -> None:
    timeout = ScanVerdict.timeout("d", "t", "yara", "no live yara for 30s", NOW, NOW)
    assert (timeout.verdict, timeout.vendor, timeout.reused_from, timeout.rescan) == (
        "timeout",
        "",
        None,
        None,
    )
    assert decode_event(timeout.encode())["verdict"] == "timeout"


def test_milliseconds_become_the_aware_times_records_hold() -> None:
    assert at_ms(int(NOW.timestamp() * 1000)) == NOW


def _beat(**changes: object) -> ScannerHeartbeat:
    values: dict[str, object] = {
        "name": "pdf-active",
        "vendor": "IntelliDox",
        "os": "Linux 6.1",
        "host": "h",
        "instance": "h/1",
        "engine_version": "1",
        "signatures_version": "names",
        "deadline_s": 60.0,
        "max_file_size": None,
        "at": NOW,
        "accepts": ("pdf",),
    }
    return ScannerHeartbeat(**{**values, **changes})  # type: ignore[arg-type]


def test_a_heartbeat_survives_the_wire_keyed_by_the_scanner_name() -> None:
    for beat in (_beat(), _beat(accepts=None, max_file_size=1 << 30)):
        assert ScannerHeartbeat.from_record(decode_event(beat.encode())) == beat
    assert _beat().kafka_key == b"pdf-active"


def test_a_heartbeat_of_the_first_schema_version_accepts_every_type() -> None:
    old = _beat().to_record()
    del old["accepts"]
    first = codec.versions("scanner_heartbeat")[0]  # as scanners sent it before v2
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, first))
    fastavro.schemaless_writer(out, codec.parsed_by_id(first), old)
    beat = ScannerHeartbeat.from_record(decode_event(out.getvalue()))
    assert beat == _beat(accepts=None) and beat.takes("text")


@pytest.mark.parametrize(
    ("accepts", "file_type", "taken"),
    [
        (None, "text", True),  # declares nothing: every type
        (("pdf",), "pdf", True),
        (("pdf",), "text", False),
        (("pdf",), None, True),  # the type is not known: every scanner is asked
        ((), "pdf", False),
    ],
)
def test_the_accept_rule(
    accepts: tuple[str, ...] | None, file_type: str | None, taken: bool
) -> None:
    assert accepts_type(accepts, file_type) is taken
    assert _beat(accepts=accepts).takes(file_type) is taken


def test_metadata_of_the_first_schema_version_has_no_other_types() -> None:
    metadata = DocsMetadata(
        "d", "t", "a" * 64, 5, "pe", None, {}, "v1", 3, None, False, NOW, also_types=("zip",)
    )
    assert DocsMetadata.decode(metadata.encode()) == metadata
    old = metadata.to_record()
    del old["also_types"]
    first = codec.versions("docs_metadata")[0]  # as extraction wrote it before v2
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, first))
    fastavro.schemaless_writer(out, codec.parsed_by_id(first), old)
    assert DocsMetadata.from_record(decode_event(out.getvalue())).also_types == ()
