"""A scanner host's metrics: scan time and verdicts per scanner, engines and work in flight.

Recorded by the runner as requests finish (a label lookup and an add each), served with the
rest of the default registry at the host's ``/metrics`` (scanners/service.py).  What is in
flight and how many engine processes run are read from the runners at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ops.metrics import SCAN_BUCKETS

SCAN_DURATION = Histogram(
    "intellidox_scan_duration_seconds",
    "Time to answer one scan request (download, when not shared, and the engine), by scanner",
    ["scanner"],
    buckets=SCAN_BUCKETS,
)
VERDICTS = Counter(
    "intellidox_verdicts",
    "Verdicts this scanner host gave, by scanner and verdict",
    ["scanner", "verdict"],
)
ENGINE_CRASHES = Counter(
    "intellidox_scanner_engine_crashes",
    "Engine processes that crashed on a file, by scanner",
    ["scanner"],
)


class RunnerView(Protocol):
    """What the collector reads of a runner (scanners/runner.py)."""

    name: str

    @property
    def in_flight(self) -> int: ...

    def engine_processes(self) -> int: ...


class HostCollector(Collector):
    """Per scanner: requests in flight and engine processes; per host: objects downloaded."""

    def __init__(self, runners: Sequence[RunnerView], downloaded: Callable[[], int]) -> None:
        self.runners, self.downloaded = runners, downloaded

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            "intellidox_scanner_in_flight", "Scan requests taken and not answered yet",
            labels=["scanner"],
        )  # fmt: skip
        engines = GaugeMetricFamily(
            "intellidox_scanner_engine_processes", "Engine processes running", labels=["scanner"]
        )
        for runner in self.runners:
            in_flight.add_metric([runner.name], runner.in_flight)
            engines.add_metric([runner.name], runner.engine_processes())
        yield in_flight
        yield engines
        yield CounterMetricFamily(
            "intellidox_scanner_downloads",
            "Objects this host downloaded (each is shared by the host's scanners)",
            value=self.downloaded(),
        )
