"""Scanner fleets against the real pipeline: failover mid-scan, and twenty vendors at once."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from ops.kafka import producer_config, topic
from scanners.listing import read_registry
from schemas import topics
from schemas.events import decode_event
from tests.gateway.client import Api
from tests.gateway.test_routes import count_events
from tests.plugins.pipeline import Pipeline, free_port

pytestmark = pytest.mark.integration


class Fleet:
    """Extra scanner processes on the test pipeline, retired from its registry afterwards."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.names: set[str] = set()
        self.procs: list[str] = []

    def start(self, proc_name: str, *specs: str) -> None:
        port = free_port()
        env = self.pipeline.env
        env["INTELLIDOX_SCANNER_PORT_BASE"] = str(port)
        try:
            self.pipeline.start(proc_name, "scanner", "run", *specs, ready_port=port)
        finally:
            env["INTELLIDOX_SCANNER_PORT_BASE"] = str(self.pipeline.settings.bind.scanner_port_base)
        self.procs.append(proc_name)
        self.names.update(spec.split(":")[0].split("?")[0] for spec in specs)

    def wait_registered(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.names <= set(read_registry(self.pipeline.settings, timeout_s=2)):
                time.sleep(1.5)  # the worker follows the same topic
                return
            time.sleep(0.5)
        raise AssertionError(f"not all of {sorted(self.names)} sent heartbeats")

    def retire(self) -> None:
        for proc in self.procs:
            if proc in self.pipeline.procs:
                self.pipeline.stop(proc)
        producer = Producer(producer_config(self.pipeline.settings))
        for name in self.names:
            registry = topic(self.pipeline.settings, topics.SCANNERS_REGISTRY)
            producer.produce(registry, key=name.encode(), value=None)
        producer.flush(10)


@pytest.fixture
def fleet(pipeline: Pipeline) -> Iterator[Fleet]:
    extra = Fleet(pipeline)
    yield extra
    extra.retire()


def _which_is_scanning(pipeline: Pipeline, procs: list[str], doc_id: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for proc in procs:
            if f"scanning {doc_id}" in (pipeline.logs / f"{proc}.log").read_text(errors="replace"):
                return proc
        time.sleep(0.1)
    raise AssertionError("no instance started scanning")


def _verdicts_from(pipeline: Pipeline, doc_id: str, scanner: str) -> int:
    """How many verdict events this scanner wrote for this document, read off the topic."""
    return count_events(
        pipeline,
        topics.SCAN_VERDICTS,
        doc_id,
        keep=lambda value: decode_event(value)["scanner"] == scanner,
    )


async def test_a_scanner_killed_mid_scan_is_replaced_by_its_peer(
    api: Api, pipeline: Pipeline, fleet: Fleet
) -> None:
    name = f"slow-{uuid.uuid4().hex[:6]}"
    spec = f"{name}:simulated?latency_ms=3000&deadline_s=45"
    fleet.start(f"{name}-a", spec)
    fleet.start(f"{name}-b", spec)
    fleet.wait_registered()
    ticket = await api.upload("failover.txt", b"failover " + uuid.uuid4().hex.encode())
    victim = _which_is_scanning(pipeline, [f"{name}-a", f"{name}-b"], ticket["id"])
    os.kill(pipeline.procs[victim].pid, signal.SIGKILL)  # no goodbye, no commit
    results = await api.wait_done(ticket["id"], timeout_s=60)
    ours = [r for r in results["scan_results"] if r["scanner"] == name]
    assert [r["verdict"] for r in ours] == ["clean"]
    assert _verdicts_from(pipeline, ticket["id"], name) == 1


def _scanning(pipeline: Pipeline, proc: str, doc_ids: list[str]) -> None:
    """Until the instance has taken every one of the documents (they are all in flight)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log = (pipeline.logs / f"{proc}.log").read_text(errors="replace")
        if all(f"scanning {doc_id}" in log for doc_id in doc_ids):
            return
        time.sleep(0.1)
    raise AssertionError(f"{proc} did not take all of {doc_ids}")


async def test_a_scanner_killed_with_requests_in_flight_leaves_each_to_its_successor(
    api: Api, pipeline: Pipeline, fleet: Fleet
) -> None:
    """Eight documents in flight at once in one instance (0.5 to 4.5 s each), killed when
    about half are done: its successor gets the rest again, each document ends with one
    verdict of that scanner in the projection, and none is lost."""
    name = f"inflight-{uuid.uuid4().hex[:6]}"
    spec = f"{name}:simulated?latency_ms=2500&jitter_ms=2000&inflight=16&deadline_s=45"
    fleet.start(f"{name}-a", spec)
    fleet.wait_registered()
    tickets = [await api.upload(f"f{i}.txt", uuid.uuid4().hex.encode()) for i in range(8)]
    doc_ids = [ticket["id"] for ticket in tickets]
    _scanning(pipeline, f"{name}-a", doc_ids)
    time.sleep(2.5)
    os.kill(pipeline.procs[f"{name}-a"].pid, signal.SIGKILL)  # no goodbye, no last commit
    fleet.start(f"{name}-b", spec)
    for doc_id in doc_ids:
        results = await api.wait_done(doc_id, timeout_s=90)
        ours = [r for r in results["scan_results"] if r["scanner"] == name]
        assert [r["verdict"] for r in ours] == ["clean"], results
        assert _verdicts_from(pipeline, doc_id, name) >= 1


async def test_twenty_vendors_answer_one_by_one(api: Api, pipeline: Pipeline, fleet: Fleet) -> None:
    specs = [
        f"v{i:02d}-{uuid.uuid4().hex[:4]}:simulated?latency_ms={100 * i}&vendor=Vendor {i:02d}"
        for i in range(20)
    ]
    fleet.start("twenty", *specs)
    fleet.wait_registered()
    ticket = await api.upload("popular.txt", b"twenty " + uuid.uuid4().hex.encode())
    results = await api.wait_done(ticket["id"], timeout_s=60)
    scanners = {r["scanner"]: r for r in results["scan_results"]}
    assert fleet.names <= set(scanners)
    assert results["summary"]["scanned"] == results["summary"]["expected"] == 23
    ends = [scanners[name]["end_at"] for name in sorted(fleet.names)]
    assert max(ends[:5]) < min(ends[-5:])  # the slow vendors answered well after the fast ones
