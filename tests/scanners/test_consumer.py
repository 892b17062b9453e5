"""Requests in flight on a real broker: side by side within a partition, commits in order.

Each test runs runners on its own topics.  A slow scanner keeps several requests of one
partition in flight; a fast scanner in the same process (one shared producer) is not held up
by it; and a runner killed while a request is unfinished has committed nothing past it, so
its successor gets that request again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops.settings import Settings
from scanners.downloads import SharedDownloads
from scanners.registry import build
from scanners.runner import Runner
from scanners.sender import Sender
from schemas import topics
from tests.scanners.http_files import FileServer
from tests.scanners.kafka_io import committed, publish, read, verdicts, wait_for
from tests.scanners.records import put_file, scan_record

pytestmark = pytest.mark.integration
REPO = Path(__file__).parents[2]
Start = Callable[[str], Runner]


@pytest.fixture
def host(
    kafka_topics: str, settings: Settings, tmp_path: Path
) -> Iterator[tuple[Settings, Start, FileServer]]:
    """Runners of one scanner process (shared downloads and producer) on this test's topics,
    and a file server; all stopped afterwards."""
    ours = settings.with_overrides(topic_prefix=kafka_topics, scanner_heartbeat_s=60.0)
    downloads, sender = SharedDownloads(tmp_path / "objects"), Sender(ours)
    (tmp_path / "served").mkdir()
    files = FileServer(tmp_path / "served").start()
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(spec: str) -> Runner:
        runner = Runner(ours, *build(spec), downloads, sender)
        thread = threading.Thread(target=runner.run, args=(stop,), name=runner.name)
        thread.start()
        threads.append(thread)
        return runner

    yield ours, start, files
    stop.set()
    for thread in threads:
        thread.join(60)
    sender.close()
    files.stop()


def test_a_slow_scanner_scans_requests_of_one_partition_side_by_side(
    host: tuple[Settings, Start, FileServer],
) -> None:
    settings, start, files = host
    put_file(files.directory, "doc.txt", b"slow")
    start("slow:simulated?latency_ms=1500&inflight=8")
    asked = [scan_record(files.url("doc.txt"), b"slow", scanners=("slow",)) for _ in range(8)]
    publish(settings, *asked, key=b"one partition")
    found = verdicts(wait_for(settings, topics.SCAN_VERDICTS, 8, timeout_s=60))
    assert len({m.partition() for m in read(settings, topics.SCAN_REQUESTS)}) == 1
    assert sorted(v["doc_id"] for v in found) == sorted(r["doc_id"] for r in asked)
    # One at a time, each would start after the one before ended: 8 x 1.5 s.
    assert max(v["start_at"] for v in found) < min(v["end_at"] for v in found)
    span = max(v["end_at"] for v in found) - min(v["start_at"] for v in found)
    assert span.total_seconds() < 6


def test_a_slow_scanner_does_not_hold_up_a_fast_one_in_the_same_process(
    host: tuple[Settings, Start, FileServer],
) -> None:
    """After one warm-up request each, twelve requests: the slow one (3 s, four in flight)
    needs three rounds; the fast one answers all twelve during the first."""
    settings, start, files = host
    put_file(files.directory, "doc.txt", b"both")
    slow = start("slow:simulated?latency_ms=3000&inflight=4")
    fast = start("fast:simulated?latency_ms=0")

    def ask(count: int) -> None:
        url = files.url("doc.txt")
        publish(
            settings, *(scan_record(url, b"both", scanners=("slow", "fast")) for _ in range(count))
        )

    ask(1)
    wait_for(settings, topics.SCAN_VERDICTS, 2, timeout_s=60)  # both in their groups
    ask(12)
    deadline = time.monotonic() + 60
    while fast.scanned < 13 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fast.scanned == 13 and slow.scanned <= 5, (fast.scanned, slow.scanned)
    found = verdicts(wait_for(settings, topics.SCAN_VERDICTS, 26, timeout_s=60))
    fast_end = max(v["end_at"] for v in found if v["scanner"] == "fast")
    slow_ends = sorted(v["end_at"] for v in found if v["scanner"] == "slow")
    assert fast_end < slow_ends[5]  # before the slow one's second round ended


RUNNER = r"""
import sys, threading
from pathlib import Path
from ops.settings import get_settings
from scanners.downloads import SharedDownloads
from scanners.runner import Runner
from tests.scanners.engines import Sleeps

prefix, cap, objects = sys.argv[1:4]
settings = get_settings().with_overrides(topic_prefix=prefix, scanner_heartbeat_s=60.0)
engine = Sleeps({"cap": cap, "inflight": "12"})
Runner(settings, "sleepy", engine, SharedDownloads(Path(objects))).run(threading.Event())
"""


def _runner_process(settings: Settings, cap: str, objects: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-c", RUNNER, settings.topic_prefix, cap, str(objects)]
    return subprocess.Popen(argv, cwd=REPO)


def _wait_committed(settings: Settings, group: str, partition: int, offset: int) -> int:
    deadline = time.monotonic() + 60
    while (found := committed(settings, group, partition)) != offset:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return found


def test_commits_never_pass_an_unfinished_request_and_a_killed_runner_redelivers_it(
    kafka_topics: str, settings: Settings, tmp_path: Path
) -> None:
    """Twelve requests of one partition; the first takes 30 s, the others 0.2 s.  Eleven
    verdicts go out while the first is unfinished, and the commit stays before it; killed
    then, the runner's successor scans all twelve again, the first one included."""
    ours = settings.with_overrides(topic_prefix=kafka_topics)
    files = FileServer(tmp_path).start()
    asked = []
    for i in range(12):
        body = f"{30 if i == 0 else 0.2} {i}".encode()
        put_file(tmp_path, f"{i}.txt", body)
        asked.append(scan_record(files.url(f"{i}.txt"), body, scanners=("sleepy",)))
    publish(ours, *asked, key=b"one partition")
    partition = read(ours, topics.SCAN_REQUESTS)[0].partition()
    first = _runner_process(ours, "inf", tmp_path / "objects-a")
    try:
        found = verdicts(wait_for(ours, topics.SCAN_VERDICTS, 11, timeout_s=60))
        assert asked[0]["doc_id"] not in {v["doc_id"] for v in found}
        time.sleep(1.5)  # commits go out every 0.5 s
        assert committed(ours, "sleepy", partition) <= 0  # none yet, or "from offset 0"
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    second = _runner_process(ours, "0.1", tmp_path / "objects-b")
    try:
        found = verdicts(wait_for(ours, topics.SCAN_VERDICTS, 23, timeout_s=90))
        assert _wait_committed(ours, "sleepy", partition, 12) == 12
    finally:
        second.terminate()
        second.wait()
        files.stop()
    per_doc = Counter(v["doc_id"] for v in found)
    assert per_doc[asked[0]["doc_id"]] == 1  # redelivered and scanned by the successor
    assert set(per_doc) == {r["doc_id"] for r in asked}


def test_a_peer_joining_mid_run_takes_partitions_and_nothing_is_lost(
    host: tuple[Settings, Start, FileServer],
) -> None:
    """The first instance has taken all 24 requests (four scanning, the rest queued) when a
    second one joins: the partitions it gives up are committed up to what it finished, their
    queued requests are left to the newcomer, and every request ends with a verdict and every
    partition's commit at its end."""
    settings, start, files = host
    put_file(files.directory, "doc.txt", b"shared")
    spec = "slow:simulated?latency_ms=1000&inflight=4"
    first = start(spec)
    asked = [scan_record(files.url("doc.txt"), b"shared", scanners=("slow",)) for _ in range(24)]
    publish(settings, *asked)
    wait_for(settings, topics.SCAN_VERDICTS, 4, timeout_s=60)
    second = start(spec)
    found = verdicts(wait_for(settings, topics.SCAN_VERDICTS, 24, timeout_s=90))
    deadline = time.monotonic() + 60
    while {v["doc_id"] for v in found} != {r["doc_id"] for r in asked}:
        assert time.monotonic() < deadline, "a request was lost"
        time.sleep(0.5)
        found = verdicts(read(settings, topics.SCAN_VERDICTS))
    ends: dict[int, int] = Counter(m.partition() for m in read(settings, topics.SCAN_REQUESTS))
    for partition, end in ends.items():  # requests scanned twice may still be finishing
        assert _wait_committed(settings, "slow", partition, end) == end
    assert second.scanned > 0 and first.scanned + second.scanned >= len(found)
