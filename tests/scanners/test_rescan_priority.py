"""Rescans never starve new documents: on a real broker, a scanner busy with a backlog of
rescans scans new requests first (its rescan waits while they fill the engines)."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from ops.kafka import producer_config, topic
from ops.settings import Settings
from scanners.downloads import SharedDownloads
from scanners.registry import build
from scanners.runner import Runner
from scanners.sender import Sender
from schemas import codec, topics
from tests.scanners.http_files import FileServer
from tests.scanners.kafka_io import publish, verdicts, wait_for
from tests.scanners.records import put_file, scan_record

pytestmark = pytest.mark.integration
LATENCY_S = 0.3
BACKLOG = 20
ENGINES = 2
NEW = 10


@pytest.fixture
def slow(
    kafka_topics: str, settings: Settings, tmp_path: Path
) -> Iterator[tuple[Settings, Runner, FileServer]]:
    """One scanner with two engines, on this test's topics."""
    ours = settings.with_overrides(topic_prefix=kafka_topics, scanner_heartbeat_s=60.0)
    (tmp_path / "served").mkdir()
    files = FileServer(tmp_path / "served").start()
    sender, stop = Sender(ours), threading.Event()
    spec = f"slow:simulated?latency_ms={LATENCY_S * 1000:.0f}&inflight={ENGINES}&engines={ENGINES}"
    runner = Runner(ours, *build(spec), SharedDownloads(tmp_path / "objects"), sender)
    thread = threading.Thread(target=runner.run, args=(stop,), name="slow")
    thread.start()
    yield ours, runner, files
    stop.set()
    thread.join(60)
    sender.close()
    files.stop()


def _rescans(settings: Settings, url: str, data: bytes, count: int) -> None:
    """Rescan requests whose verdict will differ (so each one is sent and can be timed)."""
    now = datetime.now(UTC)
    producer = Producer(producer_config(settings))
    for _ in range(count):
        doc_id = str(uuid.uuid4())
        record: dict[str, Any] = {
            "doc_id": doc_id,
            "tenant": "test",
            "scanner": "slow",
            "file_name": "doc.txt",
            "file_size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "download_url": url,
            "url_expires_at": now + timedelta(minutes=15),
            "previous_verdict": "malicious",
            "previous_signatures_version": "0",
            "signatures_version": "1",
            "reason": "signatures",
            "job_id": str(uuid.uuid4()),
            "requested_at": now,
        }
        value = codec.encode("rescan_request", record)
        producer.produce(topic(settings, topics.SCAN_RESCANS), key=doc_id.encode(), value=value)
    assert producer.flush(10) == 0


def test_new_documents_go_before_a_backlog_of_rescans(
    slow: tuple[Settings, Runner, FileServer],
) -> None:
    settings, runner, files = slow
    put_file(files.directory, "doc.txt", b"bytes")
    url = files.url("doc.txt")
    publish(settings, scan_record(url, b"bytes", scanners=("slow",)))  # warm-up: in its group
    wait_for(settings, topics.SCAN_VERDICTS, 1, timeout_s=60)
    _rescans(settings, url, b"bytes", BACKLOG)
    deadline = time.monotonic() + 60
    while runner.scanned < 3 and time.monotonic() < deadline:  # rescans are under way
        time.sleep(0.02)
    asked_at = datetime.now(UTC)
    publish(settings, *(scan_record(url, b"bytes", scanners=("slow",)) for _ in range(NEW)))
    found = verdicts(wait_for(settings, topics.SCAN_VERDICTS, 1 + BACKLOG + NEW, timeout_s=90))
    new = sorted(v["end_at"] for v in found if v["rescan"] is None and v["end_at"] > asked_at)
    rescans = sorted(v["end_at"] for v in found if v["rescan"] is not None)
    assert len(new) == NEW and len(rescans) == BACKLOG
    overtaken = [at for at in rescans if asked_at < at < new[-1]]
    took = (new[-1] - asked_at).total_seconds()
    print(
        f"\n{NEW} new requests behind {BACKLOG} rescans: done in {took:.2f}s; rescans in between:"
    )
    print(f"{len(overtaken)}; the backlog alone takes {BACKLOG * LATENCY_S:.1f}s")
    # Those being scanned when the new ones came, and one taken while the first new ones were
    # being fetched: never the backlog (a shared queue would make them wait for all of it).
    assert len(overtaken) <= ENGINES + 1
    assert rescans[-1] > new[-1]  # the backlog finishes after them
