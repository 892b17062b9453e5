"""The scanner runner's own CPU per request, with no engine work.

Run with Kafka up:  .venv/bin/python -m ops.bench.runner_overhead [--requests 2000]

Fills a fresh scan.requests topic with requests for one tiny object (served over HTTP by a
small server in a process of its own: the runner fetches only http(s) URLs), then lets one
runner with an instant simulated engine consume, download, scan, emit and commit every one.
Reported: CPU time per request (user + system) of the runner process and of its engine
processes, and the wall-clock rate.  Kafka's own CPU is not counted (it is another process).
A run that makes no progress for a minute stops with an error instead of waiting forever.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from confluent_kafka import Producer

from ops.bench.common import machine
from ops.bootstrap.topics import create_topics, delete_topics
from ops.kafka import producer_config, topic
from ops.services.processes import http_ready
from ops.settings import Settings, get_settings
from ops.stack import free_port
from scanners.runner import Runner
from scanners.simulated import Simulated
from schemas import topics
from schemas.events import encode_event


def fill(
    settings: Settings, objects: list[tuple[str, str]], scanners: list[str] | None = None
) -> None:
    """A scan request per ``(url, sha256)``, asking ``scanners`` (default: ``bench``)."""
    producer = Producer(producer_config(settings))
    deadline = datetime.now(UTC) + timedelta(hours=1)
    for url, sha in objects:
        doc_id = str(uuid.uuid4())
        request = {
            "doc_id": doc_id,
            "tenant": "bench",
            "file_name": "tiny.txt",
            "file_size": 5,
            "file_type": "text",
            "content_type": None,
            "sha256": sha,
            "download_url": url,
            "url_expires_at": deadline,
            "scanners": [{"name": n, "deadline_at": deadline} for n in scanners or ["bench"]],
            "reused": [],
            "reused_from": None,
            "requested_at": datetime.now(UTC),
        }
        producer.produce(
            topic(settings, topics.SCAN_REQUESTS),
            key=doc_id.encode(),
            value=encode_event("scan_request", request),
        )
    producer.flush(30)


@contextmanager
def served(directory: Path) -> Iterator[str]:
    """``directory`` over HTTP from a process of its own (its CPU is not the runner's, as the
    object store's is not); yields the base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(directory)]
    server = subprocess.Popen(
        [*argv, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not http_ready(f"{base}/"):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the file server did not start")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(10)


def engine_cpu_s(runner: Runner) -> float:
    total = 0.0
    for pid in runner.engines.pids():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def wait_scanned(runner: Runner, count: int, stall_s: float = 60.0) -> None:
    """Until ``count`` verdicts are out; an error after ``stall_s`` without progress."""
    last, since = -1, time.monotonic()
    while runner.scanned < count:
        if runner.scanned != last:
            last, since = runner.scanned, time.monotonic()
        elif time.monotonic() - since > stall_s:
            raise RuntimeError(f"no progress for {stall_s:.0f}s at {last}/{count} requests")
        time.sleep(0.05)


def measure(settings: Settings, count: int) -> None:
    runner = Runner(settings, "bench", Simulated({"latency_ms": "0"}))
    runner.engines.start()  # spawning the engine is start-up, not per-request work
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    cpu0, engines0, wall0 = time.process_time(), engine_cpu_s(runner), time.perf_counter()
    thread.start()
    try:
        wait_scanned(runner, count)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        engines = engine_cpu_s(runner) - engines0
    finally:
        stop.set()
        thread.join()
    print(f"machine: {machine()}")
    print(
        f"runner: {count} requests in {wall:.1f}s ({count / wall:.0f}/s); CPU per request: "
        f"runner process {cpu / count * 1000:.2f} ms (includes the group join), "
        f"engine processes {engines / count * 1000:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    count = parser.parse_args().requests
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    settings = get_settings().with_overrides(topic_prefix=prefix, scanner_heartbeat_s=60.0)
    create_topics(settings, prefix)
    try:
        directory = Path(tempfile.mkdtemp())
        (directory / "tiny.txt").write_bytes(b"hello")
        with served(directory) as base:
            objects = [(f"{base}/tiny.txt", hashlib.sha256(b"hello").hexdigest())] * count
            fill(settings, objects)
            measure(settings, count)
    finally:
        delete_topics(settings, prefix)


if __name__ == "__main__":
    main()
