"""Every field of a scan request is checked before the runner uses it."""

from __future__ import annotations

from typing import Any

import pytest

from scanners import requests
from scanners.requests import InvalidRequest
from schemas import scans
from tests.scanners.records import scan_record

URL = "http://127.0.0.1:18333/intellidox-2026/doc?X-Amz-Signature=abc"


def parse_request(record: dict[str, Any]) -> requests.ScanRequest:
    """As the runner parses it, once the bytes are decoded (the types are not checked yet)."""
    return requests.parse_request(scans.ScanRequest.from_record(record))


def test_a_well_formed_request_becomes_a_typed_record() -> None:
    record = scan_record(URL, b"data", scanners=("clamav", "sim-fast"), content_type="text/plain")
    request = parse_request(record)
    assert request.scanners == ("clamav", "sim-fast")
    assert request.job().sha256 == record["sha256"] and request.file_size == 4


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("sha256", "../victim.txt", "sha256 must be 64 lowercase hex"),
        ("sha256", "A" * 64, "sha256 must be 64 lowercase hex"),
        ("sha256", "0" * 64 + "\n", "sha256 must be 64 lowercase hex"),
        ("doc_id", "../../etc", "doc_id must be a UUID"),
        ("doc_id", None, "doc_id must be a UUID"),
        ("download_url", "file:///etc/shadow", r"must be an http\(s\) URL"),
        ("download_url", "http:///no-host", r"must be an http\(s\) URL"),
        ("download_url", "http://a b/", "printable characters"),
        ("file_size", -1, "file_size must be 0 to"),
        ("file_size", True, "file_size must be 0 to"),
        ("tenant", "", "tenant must be text"),
        ("file_name", "a\x00b", "control characters"),
        ("content_type", "x" * 300, "content_type must be text of 1 to 255"),
        ("scanners", [{"name": "../x", "deadline_at": None}], "needs a name and a deadline_at"),
        ("scanners", "clamav", "scanners must be a list"),
    ],
)
def test_a_field_that_does_not_fit_is_named(field: str, value: Any, words: str) -> None:
    record = scan_record(URL, b"data")
    record[field] = value
    with pytest.raises(InvalidRequest, match=words):
        parse_request(record)


def test_scanner_names_are_checked_and_listed_once() -> None:
    record = scan_record(URL, b"data", scanners=("clamav", "clamav"))
    with pytest.raises(InvalidRequest, match="listed twice"):
        parse_request(record)
    record = scan_record(URL, b"data", scanners=("bad name",))
    with pytest.raises(InvalidRequest, match="scanner name must be letters"):
        parse_request(record)
