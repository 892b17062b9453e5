"""Typed records are held to their Avro schemas, and survive the wire both ways."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest

from schemas import codec
from schemas.events import decode_event
from schemas.records import RescanOf, ScanVerdict

SCHEMAS = Path(__file__).parents[2] / "schemas"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _newest_fields(family: str) -> list[str]:
    files = sorted(SCHEMAS.glob(f"{family}*.avsc"), key=lambda p: (len(p.name), p.name))
    return [f["name"] for f in json.loads(files[-1].read_text())["fields"]]


@pytest.mark.parametrize(("record_type", "family"), [(ScanVerdict, "scan_verdict")])
def test_a_record_has_exactly_its_newest_schemas_fields_in_order(
    record_type: type[ScanVerdict], family: str
) -> None:
    assert [f.name for f in fields(record_type)] == _newest_fields(family)
    assert family == record_type.SCHEMA


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
    assert verdict.key == b"d"


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
