"""The typed record of ``scan.verdicts``.  The other topics' records are in
:mod:`schemas.documents`, :mod:`schemas.scans` and :mod:`schemas.scripts`; :mod:`schemas.topics`
says which topic carries which.

Each is a frozen dataclass next to the Avro schema it is written with
(tests/schemas/test_records.py holds each to its newest schema, field by field, so a field
added to a schema must be added here too).  Producers build these instead of dicts;
``encode()`` gives the Confluent-framed Avro bytes and ``from_record()`` reads a decoded record
(older schema versions included: the codec resolves them into the newest, whose added fields
have defaults); see :mod:`schemas.record`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from schemas.enums import Verdict
from schemas.record import Record


@dataclass(frozen=True, slots=True)
class RescanOf(Record):
    """What a rescan's verdict replaced, and why it was asked for."""

    previous_verdict: str
    previous_signatures_version: str
    reason: str  # "signatures" (the engine's signatures changed) or "manual"
    job_id: str


@dataclass(frozen=True, slots=True)
class ScanVerdict(Record):
    """``scan.verdicts`` (key: the document id): one scanner's verdict on one document."""

    SCHEMA: ClassVar[str] = "scan_verdict"
    NESTED: ClassVar[Mapping[str, type[Record]]] = {"rescan": RescanOf}

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
