"""The runner's own logic, without Kafka: deadlines, limits, downloads, heartbeats."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ops.settings import Settings
from scanners.base import Verdict
from scanners.downloads import file_sha256
from scanners.runner import Runner, run_with_deadline
from scanners.simulated import Simulated


def _request(path: Path, size: int) -> dict[str, object]:
    sha = file_sha256(path) if path.exists() else "0" * 64
    return {
        "doc_id": "d",
        "file_name": path.name,
        "file_size": size,
        "sha256": sha,
        "download_url": path.as_uri(),
    }


def test_a_scan_past_its_deadline_is_a_timeout_not_a_wait() -> None:
    started = time.monotonic()
    verdict = run_with_deadline(lambda: (time.sleep(5), Verdict("clean"))[1], 0.2)
    assert verdict.verdict == "timeout"
    assert time.monotonic() - started < 1


def test_an_engine_exception_is_an_error_verdict_with_its_text() -> None:
    def boom() -> Verdict:
        raise RuntimeError("engine fell over")

    verdict = run_with_deadline(boom, 1)
    assert verdict == Verdict("error", "RuntimeError: engine fell over")


def test_the_runner_downloads_and_scans_within_the_deadline(tmp_path: Path) -> None:
    source = tmp_path / "doc.txt"
    source.write_bytes(b"hello")
    runner = Runner(Settings(), "sim", Simulated({"latency_ms": "0", "verdict": "suspicious"}))
    verdict, started = runner.scan_request(
        _request(source, 5), datetime.now(UTC) + timedelta(seconds=5)
    )
    assert verdict.verdict == "suspicious"
    assert started <= datetime.now(UTC)


def test_a_deadline_already_past_is_a_timeout_without_download(tmp_path: Path) -> None:
    runner = Runner(Settings(), "sim", Simulated({"latency_ms": "0"}))
    verdict, _ = runner.scan_request(_request(tmp_path / "missing", 5), datetime.now(UTC))
    assert verdict.verdict == "timeout"


def test_a_failed_download_is_an_error_verdict(tmp_path: Path) -> None:
    runner = Runner(Settings(), "sim", Simulated({"latency_ms": "0"}))
    verdict, _ = runner.scan_request(
        _request(tmp_path / "missing", 5), datetime.now(UTC) + timedelta(seconds=5)
    )
    assert verdict.verdict == "error" and "could not download" in verdict.result


def test_heartbeats_carry_os_and_versions() -> None:
    beat = Runner(Settings(), "sim", Simulated({"vendor": "Acme"})).heartbeat()
    assert beat["name"] == "sim" and beat["vendor"] == "Acme"
    assert (
        beat["os"] and beat["engine_version"] == "1" and beat["signatures_version"] == "simulated"
    )
