"""A scanner host's metrics: what the runner records per request, what is read at scrape."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from ops.settings import Settings
from scanners.downloads import SharedDownloads
from scanners.metrics import HostCollector
from scanners.runner import Runner
from scanners.simulated import Simulated
from schemas import codec
from tests.scanners.http_files import FileServer
from tests.scanners.records import put_file, scan_record


@dataclass
class Message:
    """The parts of a Kafka message the runner reads."""

    payload: bytes

    def value(self) -> bytes:
        return self.payload

    def key(self) -> bytes:
        return b"doc"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7


@dataclass
class Seen:
    name: str
    in_flight: int
    engines: int

    def engine_processes(self) -> int:
        return self.engines


def test_in_flight_engines_and_downloads_are_read_when_scraped() -> None:
    registry = CollectorRegistry()
    runners = [Seen("clamav", 3, 2), Seen("yara", 0, 1)]
    registry.register(HostCollector(runners, lambda: 41))
    runners[0].in_flight = 5  # read at scrape time, not at registration
    text = generate_latest(registry).decode()
    assert 'intellidox_scanner_in_flight{scanner="clamav"} 5.0' in text
    assert 'intellidox_scanner_engine_processes{scanner="yara"} 1.0' in text
    assert "intellidox_scanner_downloads_total 41.0" in text


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileServer]:
    (tmp_path / "served").mkdir()
    server = FileServer(tmp_path / "served")
    yield server
    server.stop()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_request_observes_its_scan_time_and_counts_its_verdict(
    tmp_path: Path, files: FileServer
) -> None:
    name = f"sim-{uuid.uuid4().hex[:6]}"  # labels of this test only
    scanner = Simulated({"latency_ms": "200", "verdict": "suspicious"})
    runner = Runner(Settings(), name, scanner, SharedDownloads(tmp_path / "objects"))
    try:
        put_file(files.directory, "a.txt", b"a")
        record: dict[str, Any] = scan_record(files.start().url("a.txt"), b"a", scanners=(name,))
        reply = runner.handle(Message(codec.encode("scan_request", record)))
        assert reply.verdict is not None
        not_asked = scan_record(files.url("a.txt"), b"a", scanners=("someone-else",))
        assert runner.handle(Message(codec.encode("scan_request", not_asked))).verdict is None
    finally:
        runner.engines.close()
    assert sample("intellidox_verdicts_total", scanner=name, verdict="suspicious") == 1
    assert sample("intellidox_scan_duration_seconds_count", scanner=name) == 1
    assert sample("intellidox_scan_duration_seconds_sum", scanner=name) >= 0.2
    assert sample("intellidox_scan_duration_seconds_bucket", scanner=name, le="0.1") == 0
