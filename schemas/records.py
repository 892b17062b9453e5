"""Typed records of the contract: one frozen dataclass per record the code builds, next to the
Avro schema it is written with (tests/schemas/test_records.py holds each to its newest schema,
field by field, so a field added to a schema must be added here too).

Producers build these instead of dicts; ``encode()`` gives the Confluent-framed Avro bytes and
``from_record()`` reads a decoded record (older schema versions included: the codec resolves
them into the newest, whose added fields have defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

from schemas import codec
from schemas.enums import Verdict


@dataclass(frozen=True, slots=True)
class RescanOf:
    """What a rescan's verdict replaced, and why it was asked for."""

    previous_verdict: str
    previous_signatures_version: str
    reason: str  # "signatures" (the engine's signatures changed) or "manual"
    job_id: str


@dataclass(frozen=True, slots=True)
class ScanVerdict:
    """``scan.verdicts`` (key: the document id): one scanner's verdict on one document."""

    SCHEMA: ClassVar[str] = "scan_verdict"

    doc_id: str
    tenant: str
    scanner: str
    vendor: str
    verdict: str  # a Verdict value; a plain string on the wire so new classes stay readable
    result: str
    engine_version: str
    signatures_version: str
    start_at: datetime
    end_at: datetime
    reused_from: str | None = None
    rescan: RescanOf | None = None
    signatures_stale: bool = False

    @classmethod
    def timeout(
        cls, doc_id: str, tenant: str, scanner: str, why: str, start_at: datetime, end_at: datetime
    ) -> ScanVerdict:
        """The tracker's answer for a scanner whose group stayed away past its deadline."""
        return cls(doc_id, tenant, scanner, "", Verdict.TIMEOUT, why, "", "", start_at, end_at)

    @property
    def key(self) -> bytes:
        return self.doc_id.encode()

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["verdict"] = str(self.verdict)
        return record

    def encode(self) -> bytes:
        return codec.encode(self.SCHEMA, self.to_record())

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ScanVerdict:
        """From a decoded record (extra keys such as ``_schema`` are ignored)."""
        values = {f.name: record[f.name] for f in fields(cls) if f.name in record}
        rescan = values.get("rescan")
        if isinstance(rescan, Mapping):
            values["rescan"] = RescanOf(**rescan)
        return cls(**values)
