"""Extraction failures are counted by a bounded reason, never by their raw text."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from streams import metrics


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"failed": True, "error": "could not read the object: NoSuchKey"}, "download"),
        ({"failed": False, "error": None}, None),
        ({"failed": False, "error": "the script ran over its 30s time limit"}, "timeout"),
        ({"failed": False, "error": "MemoryError (memory limit 1024 MB)"}, "memory"),
        ({"failed": False, "error": "the script crashed: SIGSEGV"}, "crash"),
        ({"failed": False, "error": "the extractor sandbox did not start: bwrap"}, "sandbox"),
        ({"failed": False, "error": "cannot read the script: gone"}, "script_unavailable"),
        ({"failed": False, "error": "ValueError: meta must be a dict of str"}, "script_error"),
    ],
)
def test_each_error_text_has_one_reason(record: dict[str, Any], reason: str | None) -> None:
    assert metrics.extraction_failure(**record) == reason


def test_an_extraction_is_timed_counted_and_its_failure_labelled() -> None:
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        value("intellidox_extraction_duration_seconds_count"),
        value("intellidox_extraction_duration_seconds_sum"),
        value("intellidox_extraction_failures_total", reason="timeout"),
        value("intellidox_documents_extracted_total"),
    )
    record = {"failed": False, "error": "the script ran over its 30s time limit"}
    metrics.observe_extraction(**record, seconds=2.5)
    metrics.observe_extraction(failed=False, error=None, seconds=0.5)
    after = (
        value("intellidox_extraction_duration_seconds_count"),
        value("intellidox_extraction_duration_seconds_sum"),
        value("intellidox_extraction_failures_total", reason="timeout"),
        value("intellidox_documents_extracted_total"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [2, 3.0, 1, 2]
