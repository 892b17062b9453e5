"""Scan requests as the runner reads them off ``scan.requests``: every field checked first.

A topic is not a trust boundary we control (a mis-built producer, a replayed old record, an
attacker with a stolen producer credential), and the runner turns fields into file names
(the SHA-256 names the downloaded object) and into outgoing requests (the download URL).  So a
request becomes a :class:`ScanRequest` only when each field fits its pattern; otherwise
:class:`InvalidRequest` says which field and why, and the runner sends the record to the DLQ.
The bytes are first decoded into the contract's records (:mod:`schemas.scans`), which settle
the types; what is checked here is what the values may be.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from scanners.base import ScanJob
from schemas import codec, scans

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_SCANNER = re.compile(r"[A-Za-z0-9_-]{1,128}", re.ASCII)  # as scanners.registry.parse_spec
_WORD = re.compile(r"[a-z_]{1,32}", re.ASCII)
_REASON = re.compile(r"signatures|manual", re.ASCII)
_URL = re.compile(r"[!-~]{1,8192}", re.ASCII)  # printable ASCII, no spaces
MAX_FILE_SIZE = 1 << 40
MAX_TEXT = 255
MAX_SCANNERS = 1000


class InvalidRequest(ValueError):
    """A scan request with a field that does not fit; the message names the field."""


@dataclass(frozen=True)
class Rescan:
    """A request to scan a stored document again (``scan.rescans``): what it had before."""

    previous_verdict: str
    previous_signatures_version: str
    reason: str  # "signatures" | "manual"
    job_id: str


@dataclass(frozen=True)
class ScanRequest:
    doc_id: str
    tenant: str
    file_name: str
    file_size: int
    file_type: str | None
    content_type: str | None
    sha256: str
    download_url: str
    scanners: tuple[str, ...]  # the scanners asked for a verdict
    url_expires_at: float | None = None  # epoch seconds; None when the record has no expiry
    rescan: Rescan | None = None  # set for a request read off scan.rescans

    def job(self) -> ScanJob:
        return ScanJob(
            self.doc_id,
            self.file_name,
            self.file_size,
            self.file_type,
            self.content_type,
            self.sha256,
        )


@functools.lru_cache(maxsize=4096)
def parse_encoded(value: bytes) -> ScanRequest:
    """The request in an encoded ``scan_request`` event (ValueError when it is not one).

    Every scanner of a process reads the same bytes of each request: recent ones are decoded
    and checked once (ScanRequest is immutable, so they share the result).  A
    ``rescan_request`` (topic ``scan.rescans``) becomes a request for its one scanner."""
    family = codec.schema_of(value)
    if family == scans.RescanRequest.SCHEMA:
        return parse_rescan(scans.RescanRequest.decode(value))
    if family != scans.ScanRequest.SCHEMA:
        raise InvalidRequest(f"not a scan request: a {family!r} record")
    return parse_request(scans.ScanRequest.decode(value))


def parse_rescan(record: scans.RescanRequest) -> ScanRequest:
    """The request in a ``rescan_request`` record, or InvalidRequest."""
    scanner = _match("scanner", record.scanner, _SCANNER, "letters, digits, - _")
    request = parse_request(
        scans.ScanRequest(
            doc_id=record.doc_id,
            tenant=record.tenant,
            file_name=record.file_name,
            file_size=record.file_size,
            file_type=record.file_type,
            content_type=record.content_type,
            sha256=record.sha256,
            download_url=record.download_url,
            url_expires_at=record.url_expires_at,
            scanners=(scans.ExpectedScanner(scanner, record.url_expires_at),),
            requested_at=record.requested_at,
        )
    )
    rescan = Rescan(
        previous_verdict=_match("previous_verdict", record.previous_verdict, _WORD, "a word"),
        previous_signatures_version=_version(record.previous_signatures_version),
        reason=_match("reason", record.reason, _REASON, "signatures or manual"),
        job_id=_match("job_id", record.job_id, _UUID, "a UUID"),
    )
    return dataclasses.replace(request, rescan=rescan)


def _version(value: Any) -> str:
    """A signatures version: text, possibly empty (an engine without signatures)."""
    return "" if value == "" else _text("previous_signatures_version", value)


def parse_request(record: scans.ScanRequest) -> ScanRequest:
    """The request in ``record`` (a ``scan_request`` record), or InvalidRequest."""
    return ScanRequest(
        doc_id=_match("doc_id", record.doc_id, _UUID, "a UUID"),
        tenant=_text("tenant", record.tenant),
        file_name=_text("file_name", record.file_name),
        file_size=_size(record.file_size),
        file_type=_optional_text("file_type", record.file_type),
        content_type=_optional_text("content_type", record.content_type),
        sha256=_match("sha256", record.sha256, _SHA256, "64 lowercase hex digits"),
        download_url=_url(record.download_url),
        scanners=_scanners(record.scanners),
        url_expires_at=_expiry(record.url_expires_at),
    )


def _shown(value: Any) -> str:
    return repr(value)[:80]


def _match(field: str, value: Any, pattern: re.Pattern[str], expected: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidRequest(f"{field} must be {expected}, not {_shown(value)}")
    return value


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise InvalidRequest(f"{field} must be text of 1 to {MAX_TEXT} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidRequest(f"{field} must not contain control characters: {_shown(value)}")
    return value


def _optional_text(field: str, value: Any) -> str | None:
    return None if value is None else _text(field, value)


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FILE_SIZE:
        raise InvalidRequest(f"file_size must be 0 to {MAX_FILE_SIZE} bytes, not {_shown(value)}")
    return value


def _url(value: Any) -> str:
    _match("download_url", value, _URL, "a URL of printable characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(
            f"download_url must be an http(s) URL with a host, not {_shown(value)}"
        )
    return str(value)


def _expiry(value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidRequest(f"url_expires_at must be a timestamp, not {_shown(value)}")
    return value.timestamp()


def _scanners(value: Any) -> tuple[str, ...]:
    if not isinstance(value, tuple | list) or len(value) > MAX_SCANNERS:
        raise InvalidRequest(f"scanners must be a list of at most {MAX_SCANNERS} entries")
    names: list[str] = []
    for entry in value:
        if not isinstance(entry, scans.ExpectedScanner) or not isinstance(
            entry.deadline_at, datetime
        ):
            raise InvalidRequest(f"each scanner needs a name and a deadline_at: {_shown(entry)}")
        names.append(_match("scanner name", entry.name, _SCANNER, "letters, digits, - _"))
    if len(set(names)) != len(names):
        raise InvalidRequest(f"a scanner is listed twice: {', '.join(sorted(names))[:200]}")
    return tuple(names)
