"""The scanner runner: Kafka in, verdicts out, one consumer group per scanner name.

Pure Python plus confluent-kafka, no POSIX-only calls, so the same runner works on a Windows
host.  At-least-once: a request's offset is committed only after its verdict is acknowledged;
a runner killed mid-scan leaves the request to another instance of its group, and the
verdict table keeps one row per (document, scanner) either way.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from ops.kafka import consumer_config, producer_config, topic
from ops.settings import Settings
from scanners.base import ScanJob, Scanner, Verdict
from scanners.downloads import SharedDownloads
from schemas import topics
from streams.events import decode_event, encode_event

log = logging.getLogger(__name__)
SCAN_ATTEMPTS = 3
# Engine errors worth another try: the engine is busy or its connection dropped.
TRANSIENT = (
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "BrokenPipeError",
    "TimeoutError",
    "EngineBusy",
    "ClamdError: clamd unreachable",
    "ClamdError: clamd did not answer",
)


class Runner:
    def __init__(
        self,
        settings: Settings,
        name: str,
        scanner: Scanner,
        downloads: SharedDownloads | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.scanner = scanner
        self.instance = f"{socket.gethostname()}/{os.getpid()}"
        self.producer = Producer(producer_config(settings))
        self.downloads = downloads or SharedDownloads()
        # Concurrency = consumers in this process, each one request at a time: Kafka spreads
        # the partitions over them and nobody buffers more than it scans (backpressure).
        self.concurrency = max(1, int(scanner.options.get("concurrency", "1")))
        self.scanned = 0
        self._failures: dict[tuple[int | None, int | None], int] = {}

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        threading.Thread(target=self._heartbeats, args=(stop,), daemon=True).start()
        workers = [
            threading.Thread(target=self._consume, args=(stop,), name=f"{self.name}-{i}")
            for i in range(self.concurrency)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self.producer.flush(10)

    def _consumer(self) -> Consumer:
        session_ms = int(self.settings.scanner_session_timeout_s * 1000)
        config = consumer_config(
            self.settings,
            self.settings.topic_prefix + self.name,
            **{
                "max.poll.interval.ms": int(max(300.0, self.scanner.deadline_s * 3) * 1000),
                "session.timeout.ms": session_ms,  # a crashed peer's work moves after this
                "heartbeat.interval.ms": max(1000, session_ms // 4),
            },
        )
        consumer = Consumer(config)
        consumer.subscribe([topic(self.settings, topics.SCAN_REQUESTS)])
        return consumer

    def _consume(self, stop: threading.Event) -> None:
        """A consumer thread never dies while the runner is on: whatever breaks (Kafka away
        for long, a partition lost mid-retry), it reconnects and the group redelivers."""
        while not stop.is_set():
            try:
                self._consume_until_stopped(stop)
            except Exception:
                log.exception("%s: consumer failed; reconnecting in 1s", self.name)
                stop.wait(1)

    def _consume_until_stopped(self, stop: threading.Event) -> None:
        consumer = self._consumer()
        try:
            while not stop.is_set():  # a stop lets the scan in hand finish and commit
                message = consumer.poll(0.5)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    self._log_kafka_error(error)
                    continue
                if self._handle_or_retry(consumer, message):
                    consumer.commit(message=message, asynchronous=True)
        finally:
            consumer.close()  # commits what is done, then leaves the group: a peer takes over

    def _handle_or_retry(self, consumer: Consumer, message: Message) -> bool:
        """Handle a request; on an unexpected failure rewind to it (a few times, then DLQ)."""
        try:
            self.handle(message)  # returns once the verdict is acknowledged by Kafka
            return True
        except Exception as exc:
            key = (message.partition(), message.offset())
            self._failures[key] = self._failures.get(key, 0) + 1
            if self._failures[key] >= SCAN_ATTEMPTS:
                self._dead_letter(message, exc)
                del self._failures[key]
                return True
            log.exception("%s: request failed; retrying it", self.name)
            time.sleep(0.5 * self._failures[key])
            partition = TopicPartition(message.topic() or "", key[0] or 0, key[1] or 0)
            consumer.seek(partition)
            return False

    def _log_kafka_error(self, error: KafkaError) -> None:
        log.warning("%s: kafka: %s", self.name, error)

    def handle(self, message: Message) -> None:
        try:
            request = decode_event(message.value() or b"")
        except ValueError as exc:
            self._dead_letter(message, exc)
            return
        listed = {s["name"]: s["deadline_at"] for s in request["scanners"]}
        if self.name not in listed:
            return  # not asked (reused, or this scanner joined after the fan-out)
        log.info(
            "%s: scanning %s (partition %s, offset %s)",
            self.name,
            request["doc_id"],
            message.partition(),
            message.offset(),
        )
        verdict, started = self.scan_request(request, listed[self.name])
        self._emit(request, verdict, started)

    # -- one request ------------------------------------------------------------------------
    def scan_request(self, request: dict[str, Any], deadline: datetime) -> tuple[Verdict, datetime]:
        started = datetime.now(UTC)
        job = _job(request)
        limit = self.scanner.max_file_size
        if limit is not None and job.file_size > limit:
            too_large = Verdict("too_large", f"{job.file_size} bytes is over this engine's {limit}")
            return too_large, started
        remaining = (deadline - started).total_seconds()
        if remaining <= 0:
            return Verdict("timeout", "the deadline passed before the scan could start"), started
        try:
            with self.downloads.fetch(request["download_url"], job.sha256, remaining) as path:
                return self._scan_with_retries(path, job, deadline), started
        except OSError as exc:
            return Verdict("error", f"could not download the object: {exc}"), started

    def _scan_with_retries(self, path: Path, job: ScanJob, deadline: datetime) -> Verdict:
        """Engine busy or its socket away: retry with backoff while the deadline allows."""
        attempt = 0
        while True:
            remaining = (deadline - datetime.now(UTC)).total_seconds()
            verdict = run_with_deadline(lambda: self.scanner.scan(path, job), remaining)
            transient = verdict.verdict == "error" and verdict.result.startswith(TRANSIENT)
            pause = 0.2 * 2**attempt
            if not transient or remaining - pause <= 0 or attempt + 1 >= SCAN_ATTEMPTS:
                return verdict
            log.warning("%s: transient engine error (%s); retrying", self.name, verdict.result)
            time.sleep(pause)
            attempt += 1

    def _emit(self, request: dict[str, Any], verdict: Verdict, started: datetime) -> None:
        record = {
            "doc_id": request["doc_id"],
            "tenant": request["tenant"],
            "scanner": self.name,
            "vendor": self.scanner.vendor_label,
            "verdict": verdict.verdict,
            "result": verdict.result[:2000],
            "engine_version": _safe(self.scanner.engine_version),
            "signatures_version": _safe(self.scanner.signatures_version),
            "start_at": started,
            "end_at": datetime.now(UTC),
            "reused_from": None,
        }
        self.producer.produce(
            topic(self.settings, topics.SCAN_VERDICTS),
            key=request["doc_id"].encode(),
            value=encode_event("scan_verdict", record),
        )
        if self.producer.flush(30) != 0:
            raise RuntimeError("verdict not acknowledged by Kafka within 30s")
        self.scanned += 1

    def _dead_letter(self, message: Message, exc: Exception) -> None:
        log.warning("%s: poison scan request at offset %s: %s", self.name, message.offset(), exc)
        headers: dict[str, str | bytes | None] = {
            "x-error": f"{type(exc).__name__}: {exc}"[:1000],
            "x-scanner": self.name,
            "x-source-offset": str(message.offset()),
        }
        self.producer.produce(
            topic(self.settings, topics.dlq(topics.SCAN_REQUESTS)),
            key=message.key(),
            value=message.value(),
            headers=headers,
        )
        self.producer.flush(10)

    # -- heartbeats -------------------------------------------------------------------------
    def heartbeat(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vendor": self.scanner.vendor_label,
            "os": f"{platform.system()} {platform.release()}",
            "host": socket.gethostname(),
            "instance": self.instance,
            "engine_version": _safe(self.scanner.engine_version),
            "signatures_version": _safe(self.scanner.signatures_version),
            "deadline_s": float(self.scanner.deadline_s),
            "max_file_size": self.scanner.max_file_size,
            "at": datetime.now(UTC),
        }

    def _heartbeats(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.producer.produce(
                    topic(self.settings, topics.SCANNERS_REGISTRY),
                    key=self.name.encode(),
                    value=encode_event("scanner_heartbeat", self.heartbeat()),
                )
                self.producer.poll(0)
            except Exception:  # a missed beat is logged; the next one may get through
                log.exception("%s: heartbeat failed", self.name)
            stop.wait(self.settings.scanner_heartbeat_s)


def _job(request: dict[str, Any]) -> ScanJob:
    return ScanJob(
        request["doc_id"],
        request["file_name"],
        request["file_size"],
        request.get("file_type"),
        request.get("content_type"),
        request["sha256"],
    )


def _safe(read: Callable[[], str]) -> str:
    try:
        return read()
    except Exception as exc:  # a version probe must not stop scanning
        return f"unknown ({type(exc).__name__})"


def run_with_deadline(scan: Callable[[], Verdict], timeout_s: float) -> Verdict:
    """Run ``scan`` in a daemon thread; a scan past the deadline is reported, not awaited."""
    outcome: list[Verdict] = []

    def target() -> None:
        try:
            outcome.append(scan())
        except Exception as exc:
            outcome.append(Verdict("error", f"{type(exc).__name__}: {exc}"))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(max(0.0, timeout_s))
    if not outcome:
        return Verdict("timeout", f"the engine did not answer within {timeout_s:.1f}s")
    return outcome[0]
