"""Rescans on a scanner host, without services: parsing, what is sent, the gate, the skip."""

from __future__ import annotations

import hashlib
import queue
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ops.settings import Settings
from scanners import consumer as consumer_module
from scanners.base import ScanJob, Verdict
from scanners.consumer import RequestConsumer
from scanners.hash_reputation import HashReputation
from scanners.inflight import Ticket
from scanners.requests import InvalidRequest, Rescan, parse_encoded
from scanners.rescans import decide, rescan_of, source_topic
from schemas import codec, topics
from schemas.records import RescanOf

NOW = datetime.now(UTC)


def rescan_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "doc_id": str(uuid.uuid4()),
        "tenant": "t",
        "scanner": "hash-reputation",
        "file_name": "a.txt",
        "file_size": 3,
        "file_type": None,
        "content_type": None,
        "sha256": hashlib.sha256(b"abc").hexdigest(),
        "download_url": "http://127.0.0.1:1/a",
        "url_expires_at": NOW + timedelta(hours=1),
        "previous_verdict": "clean",
        "previous_signatures_version": "1-abc",
        "signatures_version": "2-def",
        "reason": "signatures",
        "job_id": str(uuid.uuid4()),
        "requested_at": NOW,
    }
    record.update(overrides)
    return record


def test_a_rescan_request_asks_its_one_scanner_and_says_what_it_had() -> None:
    record = rescan_record()
    request = parse_encoded(codec.encode("rescan_request", record))
    assert request.scanners == ("hash-reputation",)
    assert request.rescan == Rescan("clean", "1-abc", "signatures", record["job_id"])
    assert request.url_expires_at == pytest.approx(record["url_expires_at"].timestamp(), abs=0.01)
    assert rescan_of(request) == RescanOf("clean", "1-abc", "signatures", record["job_id"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scanner", "../etc"),
        ("previous_verdict", "Clean; drop"),
        ("reason", "because"),
        ("job_id", "not-a-uuid"),
        ("sha256", "ABC"),
    ],
)
def test_a_rescan_request_with_a_field_that_does_not_fit_is_refused(field: str, value: str) -> None:
    with pytest.raises(InvalidRequest, match=field.split("_")[0]):
        parse_encoded(codec.encode("rescan_request", rescan_record(**{field: value})))


def test_only_a_changed_conclusive_verdict_is_sent() -> None:
    had = Rescan("clean", "1", "signatures", str(uuid.uuid4()))
    assert decide(had, Verdict("malicious", "listed"), None).publish
    unchanged = decide(had, Verdict("clean"), None)
    assert (unchanged.outcome, unchanged.publish, unchanged.dead_letter) == (
        "unchanged",
        False,
        None,
    )
    for verdict in ("error", "timeout", "too_large", "unsupported"):
        failed = decide(had, Verdict(verdict, "boom"), None)
        assert failed.outcome == "failed" and not failed.publish
        assert failed.dead_letter is not None and "kept clean" in failed.dead_letter
    crashed = decide(had, Verdict("error", "crash"), "the engine crashed")
    assert crashed.dead_letter == "rescan: the engine crashed" and not crashed.publish


def test_dead_letters_go_to_the_dlq_of_the_topic_the_request_came_from() -> None:
    settings = Settings(topic_prefix="p.")
    assert source_topic(settings, "p.scan.rescans") == topics.SCAN_RESCANS
    assert source_topic(settings, "p.scan.requests") == topics.SCAN_REQUESTS
    assert source_topic(settings, None) == topics.SCAN_REQUESTS


def test_a_hash_list_change_leaves_every_other_hash_unaffected(tmp_path: Path) -> None:
    listed, other = hashlib.sha256(b"bad").hexdigest(), hashlib.sha256(b"fine").hexdigest()
    path = tmp_path / "bad.txt"
    path.write_text(f"{hashlib.sha256(b'old').hexdigest()} Old.One\n")
    engine = HashReputation({"list_path": str(path)})
    before = engine.signatures_version()
    path.write_text(path.read_text() + f"{listed} New.One\n")
    after = engine.signatures_version()
    assert after != before

    def job(sha: str) -> ScanJob:
        return ScanJob("d", "f", 1, None, None, sha)

    assert engine.unaffected(job(other), before)
    assert not engine.unaffected(job(listed), before)
    assert not engine.unaffected(job(other), "9-unknown")  # a version this process never had
    assert (
        HashReputation({"list_path": str(path), "verify": "1"}).unaffected(job(other), after)
        is False
    )


class _Kafka:
    """The little of a confluent Consumer that flow control touches."""

    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0

    def assignment(self) -> list[str]:
        return ["p0"]

    def pause(self, partitions: list[str]) -> None:
        self.paused += 1

    def resume(self, partitions: list[str]) -> None:
        self.resumed += 1


def _rescan_consumer(busy: list[bool]) -> RequestConsumer:
    return RequestConsumer({}, "p.scan.rescans", 1, "x-rescans", 1.0, 1, lambda: not busy[0])


def test_a_closed_gate_never_pauses_an_idle_rescan_topic() -> None:
    busy = [True]
    consumer = _rescan_consumer(busy)
    kafka: Any = _Kafka()
    for step in range(150):  # the engines fill and empty at every request
        busy[0] = step % 2 == 0
        consumer._flow(kafka)
    assert (kafka.paused, kafka.resumed) == (0, 0)


def _take(consumer: RequestConsumer) -> tuple[Any, Ticket]:
    return object(), consumer.flight.take(("p.scan.rescans", 0), 7)


def _working(consumer: RequestConsumer, work: queue.SimpleQueue[Any]) -> list[Any]:
    """A worker thread of ``consumer`` whose process records what it was handed."""
    handed: list[Any] = []

    def process(message: Any, done: Any) -> None:
        handed.append(message)
        done()

    threading.Thread(target=consumer._work, args=(work, process), daemon=True).start()
    return handed


def test_a_taken_rescan_waits_for_the_engines_to_have_room() -> None:
    busy = [True]
    consumer = _rescan_consumer(busy)
    work: queue.SimpleQueue[Any] = queue.SimpleQueue()
    handed = _working(consumer, work)
    message, ticket = _take(consumer)
    work.put((message, ticket))
    time.sleep(4 * consumer_module.GATE_POLL_S)
    assert handed == [] and len(consumer.flight) == 1  # held, still counted
    busy[0] = False
    assert consumer.flight.wait_empty(5)
    assert handed == [message]
    work.put(None)


def test_a_rescan_waiting_at_the_gate_is_let_go_when_the_consumer_stops() -> None:
    consumer = _rescan_consumer([True])
    work: queue.SimpleQueue[Any] = queue.SimpleQueue()
    handed = _working(consumer, work)
    work.put(_take(consumer))
    time.sleep(2 * consumer_module.GATE_POLL_S)
    consumer._stopping.set()
    assert consumer.flight.wait_empty(5)  # abandoned: counted out
    assert handed == []
    assert consumer.flight.due() == {("p.scan.rescans", 0): 7}  # never passed: delivered again
    work.put(None)


def test_partitions_assigned_while_paused_are_paused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "FULL_WAIT_S", 0.01)
    consumer = _rescan_consumer([True])
    _take(consumer)  # its one request waits at the gate: the queue is full
    kafka: Any = _Kafka()
    consumer._flow(kafka)
    consumer._got(kafka, [])
    consumer._flow(kafka)
    consumer._flow(kafka)
    assert (kafka.paused, kafka.resumed) == (2, 0)
