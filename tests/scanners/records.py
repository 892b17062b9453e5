"""Scan request records as the orchestrator writes them (Avro-encodable), for runner tests."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scanners.requests import ScanRequest, parse_request
from schemas import scans


def scan_record(
    url: str,
    data: bytes,
    scanners: tuple[str, ...] = ("sim",),
    deadline_in_s: float = 60,
    **overrides: Any,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    deadline = now + timedelta(seconds=deadline_in_s)
    record: dict[str, Any] = {
        "doc_id": str(uuid.uuid4()),
        "tenant": "test",
        "file_name": url.rsplit("/", 1)[-1],
        "file_size": len(data),
        "file_type": None,
        "content_type": None,
        "sha256": hashlib.sha256(data).hexdigest(),
        "download_url": url,
        "url_expires_at": now + timedelta(minutes=15),
        "scanners": [{"name": name, "deadline_at": deadline} for name in scanners],
        "reused": [],
        "reused_from": None,
        "requested_at": now,
    }
    record.update(overrides)
    return record


def put_file(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def request(url: str, data: bytes, **options: Any) -> ScanRequest:
    return parse_request(scans.ScanRequest.from_record(scan_record(url, data, **options)))
