"""The typed records of ``scan.verdicts`` and ``scanners.registry``.  The other topics'
records are in :mod:`schemas.documents`, :mod:`schemas.scans` and :mod:`schemas.scripts`;
:mod:`schemas.topics` says which topic carries which.

Each is a frozen dataclass next to the Avro schema it is written with
(tests/schemas/test_records.py holds each to its newest schema, field by field, so a field
added to a schema must be added here too).  Producers build these instead of dicts;
``encode()`` gives the Confluent-framed Avro bytes and ``from_record()`` reads a decoded record
(older schema versions included: the codec resolves them into the newest, whose added fields
have defaults); see :mod:`schemas.record`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
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


def accepts_type(accepts: Collection[str] | None, file_type: str | None) -> bool:
    """The accept rule: ``accepts`` None takes every type, and a document whose type is not
    known (None) goes to every scanner: only a known type outside the list is refused."""
    return accepts is None or file_type is None or file_type in accepts


def refusal(scanner: str, accepts: Collection[str], file_type: str) -> str:
    """The ``unsupported`` verdict's text for a type ``scanner`` does not accept."""
    return f"{file_type} is not a type {scanner} accepts ({', '.join(sorted(accepts))})"


@dataclass(frozen=True, slots=True)
class ScannerHeartbeat(Record):
    """``scanners.registry`` (compacted, key: the scanner name): one instance is alive, and
    what it is: the runner sends one every ``scanner_heartbeat_s``, the worker keeps the
    latest per name."""

    SCHEMA: ClassVar[str] = "scanner_heartbeat"
    KEY: ClassVar[str] = "name"

    name: str
    vendor: str
    os: str
    host: str
    instance: str
    engine_version: str
    signatures_version: str
    deadline_s: float
    max_file_size: int | None
    at: datetime
    accepts: tuple[str, ...] | None = None  # file types it is asked about; None: every type

    def takes(self, file_type: str | None) -> bool:
        return accepts_type(self.accepts, file_type)
