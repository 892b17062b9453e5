"""The scanner runner's own CPU per request, with no engine work.

Run with Kafka up:  .venv/bin/python -m ops.bench.runner_overhead [--requests 2000]

Fills a fresh scan.requests topic with requests for one tiny object (served from a local
file URL), then lets one runner with an instant simulated engine consume, "download", scan,
emit and commit every one.  Reported: process CPU time per request (user + system) and the
wall-clock rate.  Kafka's own CPU is not counted (it is another process).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Producer

from ops.bench.common import machine
from ops.bootstrap.topics import create_topics, delete_topics
from ops.kafka import producer_config, topic
from ops.settings import Settings, get_settings
from scanners.runner import Runner
from scanners.simulated import Simulated
from schemas import topics
from streams.events import encode_event


def fill(settings: Settings, count: int, url: str, sha: str) -> None:
    producer = Producer(producer_config(settings))
    deadline = datetime.now(UTC) + timedelta(hours=1)
    for _ in range(count):
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
            "scanners": [{"name": "bench", "deadline_at": deadline}],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    count = parser.parse_args().requests
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    settings = get_settings().with_overrides(topic_prefix=prefix, scanner_heartbeat_s=60.0)
    create_topics(settings.kafka_bootstrap, prefix)
    try:
        tiny = Path(tempfile.mkdtemp()) / "tiny.txt"
        tiny.write_bytes(b"hello")
        fill(settings, count, tiny.as_uri(), hashlib.sha256(b"hello").hexdigest())
        runner = Runner(settings, "bench", Simulated({"latency_ms": "0"}))
        stop = threading.Event()
        thread = threading.Thread(target=runner.run, args=(stop,))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        thread.start()
        while runner.scanned < count:
            time.sleep(0.05)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        stop.set()
        thread.join()
        print(f"machine: {machine()}")
        print(
            f"runner: {count} requests in {wall:.1f}s ({count / wall:.0f}/s); "
            f"CPU {cpu / count * 1000:.2f} ms per request (includes start-up and group join)"
        )
    finally:
        delete_topics(settings.kafka_bootstrap, prefix)


if __name__ == "__main__":
    main()
