"""Deadlines measure the engine, not our outages: a scanner that never answers gets a
``timeout`` and the document still finishes; a worker crash costs no engine its deadline;
a verdict that comes after the ``timeout`` replaces it everywhere."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from ops.kafka import client_config, producer_config, topic
from ops.replay import read_all
from scanners.listing import read_registry
from schemas import topics
from schemas.events import decode_event, encode_event
from streams.reread import partition_of
from tests.gateway.client import Api, parse_sse
from tests.plugins.pipeline import Pipeline, free_port

pytestmark = pytest.mark.integration


def _start_scanner(pipeline: Pipeline, name: str, options: str) -> None:
    port = free_port()
    pipeline.env["INTELLIDOX_SCANNER_PORT_BASE"] = str(port)
    try:
        pipeline.start(name, "scanner", "run", f"{name}:simulated?{options}", ready_port=port)
    finally:
        pipeline.env["INTELLIDOX_SCANNER_PORT_BASE"] = str(pipeline.settings.bind.scanner_port_base)
    _wait_registered(pipeline, name)
    time.sleep(1.5)  # the worker follows the registry topic; give it a beat


def _retire(pipeline: Pipeline, name: str) -> None:
    if name in pipeline.procs:
        pipeline.stop(name)
    producer = Producer(producer_config(pipeline.settings))
    producer.produce(
        topic(pipeline.settings, topics.SCANNERS_REGISTRY), key=name.encode(), value=None
    )
    producer.flush(10)


@pytest.fixture(params=["hangs", "gone"])
def hanging_scanner(pipeline: Pipeline, request: pytest.FixtureRequest) -> Iterator[str]:
    """A registered scanner that never answers: its engine hangs (the runner's deadline
    answers), or its process is gone (the tracker's deadline answers).  Retired after."""
    name = f"hang-{uuid.uuid4().hex[:6]}"
    _start_scanner(pipeline, name, "hang=1&deadline_s=2")
    if request.param == "gone":
        pipeline.stop(name)
    yield name
    _retire(pipeline, name)


@pytest.fixture
def gone_scanner(pipeline: Pipeline) -> Iterator[str]:
    """A scanner that registered, then went away (its requests wait for it)."""
    name = f"gone-{uuid.uuid4().hex[:6]}"
    _start_scanner(pipeline, name, "deadline_s=2")
    pipeline.stop(name)
    yield name
    _retire(pipeline, name)


@pytest.fixture
def quick_scanner(pipeline: Pipeline) -> Iterator[str]:
    """A scanner that answers in 2.5 s, within its 3 s deadline."""
    name = f"quick-{uuid.uuid4().hex[:6]}"
    _start_scanner(pipeline, name, "latency_ms=2500&deadline_s=3")
    yield name
    _retire(pipeline, name)


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
    results = await api.wait_done(ticket["id"], timeout_s=60)
    by_scanner = {r["scanner"]: r for r in results["scan_results"]}
    assert by_scanner[hanging_scanner]["verdict"] == "timeout"
    assert by_scanner["sim-a"]["verdict"] == "clean"
    assert results["summary"]["expected"] == 4 and results["summary"]["scanned"] == 4


async def _wait_in_progress(api: Api, doc_id: str, timeout_s: float = 30) -> str:
    """Wait until the scan request is out; returns the status then (in_progress or done)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = (await api.call("GET", f"/docs/{doc_id}/meta")).body["status"]
        if status in ("in_progress", "done"):
            return str(status)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{doc_id} never in progress")


async def test_a_worker_crash_costs_no_engine_its_deadline(
    api: Api, pipeline: Pipeline, quick_scanner: str
) -> None:
    uploads = [api.upload(f"crash-{i}.txt", f"crash {i} {uuid.uuid4()}".encode()) for i in range(6)]
    tickets = await asyncio.gather(*uploads)
    statuses = [await _wait_in_progress(api, t["id"]) for t in tickets]
    pipeline.kill("worker")
    assert statuses == ["in_progress"] * 6  # the engines are at work, nothing finished yet
    await asyncio.sleep(6)  # well past the 3 s deadline; the engines answer meanwhile
    await asyncio.to_thread(pipeline.restart, "worker")
    for ticket in tickets:
        try:
            results = await api.wait_done(ticket["id"], timeout_s=90)
        except AssertionError as exc:  # say where the missing verdict is: topic or worker
            held = await asyncio.to_thread(_verdicts_on_topic, pipeline, ticket["id"])
            raise AssertionError(f"{exc}\nscan.verdicts holds: {held}") from None
        verdicts = {r["scanner"]: r["verdict"] for r in results["scan_results"]}
        assert verdicts[quick_scanner] == "clean", verdicts
        assert "timeout" not in verdicts.values(), verdicts


async def test_a_verdict_the_worker_never_processed_is_read_again(
    api: Api, pipeline: Pipeline, quick_scanner: str
) -> None:
    """The worker's consumer loses a verdict (here its group's offset is moved past it while
    the worker is down; Faust can drop a fetched event by itself): the tracker, still waiting
    on a live scanner long after its deadline, reads the partition again."""
    ticket = await api.upload("lost.txt", b"lost verdict " + uuid.uuid4().hex.encode())
    doc_id = ticket["id"]
    assert await _wait_in_progress(api, doc_id) == "in_progress"
    pipeline.kill("worker")
    await _until_on_topic(pipeline, doc_id, quick_scanner)  # the engine answered meanwhile
    await asyncio.to_thread(_commit_past_the_end, pipeline, doc_id)
    await asyncio.to_thread(pipeline.restart, "worker")
    results = await api.wait_done(doc_id, timeout_s=120)
    verdicts = {r["scanner"]: r["verdict"] for r in results["scan_results"]}
    assert verdicts[quick_scanner] == "clean", verdicts
    assert "timeout" not in verdicts.values(), verdicts
    assert results["summary"]["scanned"] == results["summary"]["expected"] == 4


async def _until_on_topic(pipeline: Pipeline, doc_id: str, scanner: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        held = await asyncio.to_thread(_verdicts_on_topic, pipeline, doc_id)
        if any(f" {scanner} " in line for line in held):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{scanner} never answered {doc_id}")


def _commit_past_the_end(pipeline: Pipeline, doc_id: str) -> None:
    """Move the worker group's committed offset of the document's verdict partition to its
    end, once the dead worker has left the group (its session times out)."""
    settings = pipeline.settings
    name = topic(settings, topics.SCAN_VERDICTS)
    part = TopicPartition(name, partition_of(doc_id.encode(), settings.kafka.partitions))
    admin = AdminClient(client_config(settings))
    end = max(m.offset() or 0 for m in read_all(settings, name, key=doc_id.encode())) + 1
    group = f"{settings.topic_prefix}intellidox-worker"
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(part.topic, part.partition, end)])
    deadline = time.monotonic() + 30
    while True:
        try:
            done = admin.alter_consumer_group_offsets([request])[group].result(timeout=10)
            error = done.topic_partitions[0].error
        except KafkaException as exc:
            error = exc
        if error is None:
            return
        if time.monotonic() > deadline:  # the group still has the dead member: not empty yet
            raise AssertionError(f"could not move {group}'s offset: {error}")
        time.sleep(1)


def _late_verdict(doc_id: str, scanner: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "doc_id": doc_id,
        "tenant": "dev",
        "scanner": scanner,
        "vendor": "Gone Corp",
        "verdict": "malicious",
        "result": "Found.Late",
        "engine_version": "1",
        "signatures_version": "1",
        "start_at": now,
        "end_at": now,
        "reused_from": None,
    }


def _verdicts_on_topic(pipeline: Pipeline, doc_id: str) -> list[str]:
    """Each verdict the topic holds for ``doc_id`` (partition, offset, scanner, verdict)."""
    name = topic(pipeline.settings, topics.SCAN_VERDICTS)
    return [
        f"{message.partition()}@{message.offset()} {record['scanner']} {record['verdict']}"
        for message in read_all(pipeline.settings, name, key=doc_id.encode())
        if (record := decode_event(message.value() or b""))["doc_id"] == doc_id
    ]


def _statuses(pipeline: Pipeline, doc_id: str) -> list[str]:
    found = []
    for message in read_all(pipeline.settings, topic(pipeline.settings, topics.DOCS_STATUS)):
        record = decode_event(message.value() or b"")
        if record["doc_id"] == doc_id:
            found.append(record["status"])
    return found


async def test_a_verdict_after_the_timeout_replaces_it_everywhere(
    api: Api, pipeline: Pipeline, gone_scanner: str
) -> None:
    ticket = await api.upload("late.txt", b"answer late " + uuid.uuid4().hex.encode())
    doc_id = ticket["id"]
    first = await api.wait_done(doc_id, timeout_s=60)
    assert {r["scanner"]: r["verdict"] for r in first["scan_results"]}[gone_scanner] == "timeout"
    stream = parse_sse(await api.sse_raw(ticket["urls"]["events"]))
    # The engine answers after all (it was only away).
    producer = Producer(producer_config(pipeline.settings))
    producer.produce(
        topic(pipeline.settings, topics.SCAN_VERDICTS),
        key=doc_id.encode(),
        value=encode_event("scan_verdict", _late_verdict(doc_id, gone_scanner)),
    )
    producer.flush(10)
    results = await _until_replaced(api, doc_id, gone_scanner)
    row = {r["scanner"]: r for r in results["scan_results"]}[gone_scanner]
    assert row["verdict"] == "malicious" and row["late"] is True
    assert results["status"] == "done" and results["summary"]["flagged"] == 1
    assert results["summary"]["scanned"] == results["summary"]["expected"] == 4
    resumed = parse_sse(await api.sse_raw(ticket["urls"]["events"], last_event_id=stream[-1].id))
    assert [e.event for e in resumed] == ["verdict", "done"]
    # scan-results also shows what the verdict replaced (the stream's event is the fact itself).
    assert resumed[0].data == {k: v for k, v in row.items() if k != "earlier"}
    assert [e["verdict"] for e in row["earlier"]] == ["timeout"]
    statuses = await asyncio.to_thread(_statuses, pipeline, doc_id)
    assert statuses[-1] == "done" and statuses.count("done") == 1  # never moved backwards


async def _until_replaced(api: Api, doc_id: str, scanner: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = (await api.call("GET", f"/docs/{doc_id}/scan-results")).body
        if {r["scanner"]: r["verdict"] for r in body["scan_results"]}[scanner] != "timeout":
            return dict(body)
        await asyncio.sleep(0.2)
    raise AssertionError(f"the late verdict of {scanner} never replaced its timeout")
