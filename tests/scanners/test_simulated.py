from pathlib import Path

import pytest

from scanners.base import ScanJob
from scanners.simulated import Simulated

JOB = ScanJob("d", "a.txt", 3, "text", None, "0" * 64)


def test_answers_the_configured_verdict_after_the_latency(tmp_path: Path) -> None:
    scanner = Simulated({"latency_ms": "30", "verdict": "suspicious", "vendor": "Acme"})
    verdict = scanner.scan(tmp_path, JOB)
    assert verdict.verdict == "suspicious" and "after 30 ms" in verdict.result
    assert scanner.vendor_label == "Acme"


def test_a_malicious_rate_of_one_always_flags(tmp_path: Path) -> None:
    scanner = Simulated({"latency_ms": "0", "malicious_rate": "1"})
    assert {scanner.scan(tmp_path, JOB).verdict for _ in range(5)} == {"malicious"}


def test_an_unknown_verdict_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        Simulated({"verdict": "fine"})


def test_an_unknown_crash_is_refused() -> None:
    with pytest.raises(ValueError, match="not exit or memory"):
        Simulated({"crash": "segfault"})
