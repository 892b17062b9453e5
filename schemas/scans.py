"""Typed records of the scan topics that ask for scans: ``scan.requests`` and ``scan.rescans``
(key: the document id).  Verdicts are in :mod:`schemas.records`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from schemas.record import Record


@dataclass(frozen=True, slots=True)
class ExpectedScanner(Record):
    """One scanner a request asks, and when its verdict is due."""

    name: str
    deadline_at: datetime


@dataclass(frozen=True, slots=True)
class ScanRequest(Record):
    """Scan this object: every scanner group reads every request and acts only when listed.
    Scanners get a short-lived pre-signed GET, never storage credentials."""

    SCHEMA: ClassVar[str] = "scan_request"
    NESTED: ClassVar[Mapping[str, type[Record]]] = {"scanners": ExpectedScanner}

    doc_id: str
    tenant: str
    file_name: str
    file_size: int
    file_type: str | None
    content_type: str | None
    sha256: str
    download_url: str
    url_expires_at: datetime
    scanners: tuple[ExpectedScanner, ...]
    # Scanners whose verdicts were copied from reused_from (keyword-only: they have defaults
    # in the schema, the field after them has none).
    reused: tuple[str, ...] = field(default=(), kw_only=True)
    reused_from: str | None = field(default=None, kw_only=True)
    requested_at: datetime
    # Live scanners that do not accept file_type: answered unsupported, not asked.
    unsupported: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RescanRequest(Record):
    """Scan this stored document again with one scanner, at low priority; only a verdict that
    differs from ``previous_verdict`` becomes a fact."""

    SCHEMA: ClassVar[str] = "rescan_request"

    doc_id: str
    tenant: str
    scanner: str  # the one scanner asked (its consumer group name)
    file_name: str
    file_size: int
    file_type: str | None
    content_type: str | None
    sha256: str
    download_url: str  # a short-lived pre-signed GET of the pinned object version
    url_expires_at: datetime
    previous_verdict: str
    previous_signatures_version: str
    signatures_version: str | None  # the engine's signatures that triggered it; None: manual
    reason: str  # "signatures" or "manual"
    job_id: str
    requested_at: datetime
