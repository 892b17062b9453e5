"""A scanner that never answers gets a ``timeout`` verdict, and the document still finishes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from ops.kafka import producer_config, topic
from scanners.listing import read_registry
from schemas import topics
from tests.gateway.client import Api
from tests.plugins.pipeline import Pipeline, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(params=["hangs", "gone"])
def hanging_scanner(pipeline: Pipeline, request: pytest.FixtureRequest) -> Iterator[str]:
    """A registered scanner that never answers: its engine hangs (the runner's deadline
    answers), or its process is gone (the tracker's deadline answers).  Retired after."""
    name = f"hang-{uuid.uuid4().hex[:6]}"
    port = free_port()
    pipeline.env["INTELLIDOX_SCANNER_PORT_BASE"] = str(port)
    try:
        pipeline.start(
            name, "scanner", "run", f"{name}:simulated?hang=1&deadline_s=2", ready_port=port
        )
    finally:
        pipeline.env["INTELLIDOX_SCANNER_PORT_BASE"] = str(pipeline.settings.scanner_port_base)
    _wait_registered(pipeline, name)
    time.sleep(1.5)  # the worker follows the registry topic; give it a beat
    if request.param == "gone":
        pipeline.stop(name)
    yield name
    if request.param == "hangs":
        pipeline.stop(name)
    producer = Producer(producer_config(pipeline.settings))
    producer.produce(
        topic(pipeline.settings, topics.SCANNERS_REGISTRY), key=name.encode(), value=None
    )
    producer.flush(10)


def _wait_registered(pipeline: Pipeline, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if name in read_registry(pipeline.settings, timeout_s=2):
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} never sent a heartbeat")


async def test_a_silent_scanner_times_out_and_the_document_is_done(
    api: Api, hanging_scanner: str
) -> None:
    ticket = await api.upload("slow.txt", b"who answers? " + uuid.uuid4().hex.encode())
    results = await api.wait_done(ticket["id"], timeout_s=45)
    by_scanner = {r["scanner"]: r for r in results["scan_results"]}
    assert by_scanner[hanging_scanner]["verdict"] == "timeout"
    assert by_scanner["sim-a"]["verdict"] == "clean"
    assert results["summary"]["expected"] == 4 and results["summary"]["scanned"] == 4
