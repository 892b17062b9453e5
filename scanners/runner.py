"""The scanner runner: Kafka in, verdicts out, one consumer group per scanner name.

Pure Python plus confluent-kafka, no POSIX-only calls, so the same runner works on a Windows
host.  At-least-once: a request's offset is committed only after its verdict is acknowledged;
a runner killed mid-scan leaves the request to another instance of its group, and the
verdict table keeps one row per (document, scanner) either way.

Every request is validated (:mod:`scanners.requests`) before anything else; an invalid one
goes to the DLQ with the reason.  The engine scans in its own process under a memory ceiling
(:mod:`scanners.isolation`): a file that crashes it is retried a bounded number of times,
then gets one ``error`` verdict and a DLQ record, never an endless redelivery.

Deadlines measure the engine's own time: the clock starts when this runner hands the file to
the engine, with the scanner's own ``deadline_s``, never from the fan-out time, so a request
that waited in Kafka through an outage is scanned, not timed out.  The download before it
retries a storage outage for up to the same ``deadline_s``.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from ops.kafka import consumer_config, producer_config, topic
from ops.settings import Settings
from scanners.base import ScanJob, Scanner, Verdict
from scanners.downloads import SharedDownloads
from scanners.isolation import EnginePool, EngineSpec, Outcome
from scanners.requests import ScanRequest, parse_request
from schemas import codec, topics

log = logging.getLogger(__name__)
SCAN_ATTEMPTS = 3  # per request: transient engine errors and engine crashes alike
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


@dataclass(frozen=True)
class Scan:
    """What became of one request: the verdict, and why it also goes to the DLQ, if it does."""

    verdict: Verdict
    started: datetime
    dead_letter: str | None = None


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
        self.crashes = 0
        self._failures: dict[tuple[int | None, int | None], int] = {}
        memory_mb = int(scanner.options.get("memory_mb", settings.scanner_memory_mb))
        spec = EngineSpec(type(scanner), dict(scanner.options), memory_mb)
        self.engines = EnginePool(spec, self.concurrency)

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.engines.start()  # before the first heartbeat: registered means ready to scan
        try:
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
        finally:
            self.engines.close()

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
                self._dead_letter(message, f"{type(exc).__name__}: {exc}")
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
            request = parse_request(codec.decode(message.value() or b"", "scan_request"))
        except ValueError as exc:  # undecodable, or a field that does not fit
            self._dead_letter(message, f"{type(exc).__name__}: {exc}")
            return
        if self.name not in request.scanners:
            return  # not asked (reused, or this scanner joined after the fan-out)
        log.info(
            "%s: scanning %s (partition %s, offset %s)",
            self.name,
            request.doc_id,
            message.partition(),
            message.offset(),
        )
        scan = self.scan_request(request)
        self._emit(request, scan.verdict, scan.started)
        if scan.dead_letter is not None:
            self._dead_letter(message, scan.dead_letter)

    # -- one request ------------------------------------------------------------------------
    def scan_request(self, request: ScanRequest) -> Scan:
        """Download, then scan with the engine's own deadline (not the fan-out's)."""
        started = datetime.now(UTC)
        job = request.job()
        limit = self.scanner.max_file_size
        if limit is not None and job.file_size > limit:
            too_large = Verdict("too_large", f"{job.file_size} bytes is over this engine's {limit}")
            return Scan(too_large, started)
        window = float(self.scanner.deadline_s)  # storage outages are retried this long
        try:
            with self.downloads.fetch(request.download_url, job.sha256, window) as path:
                verdict, crashed = self._scan_with_retries(path, job)
        except OSError as exc:
            return Scan(Verdict("error", f"could not download the object: {exc}"), started)
        return Scan(verdict, started, crashed)

    def _scan_with_retries(self, path: Path, job: ScanJob) -> tuple[Verdict, str | None]:
        """Scan in the engine's process; retry a busy engine or a crashed process with
        backoff while the deadline allows, at most SCAN_ATTEMPTS times.  Returns the verdict
        and, when the engine crashed on every try, the reason for the DLQ."""
        deadline = time.monotonic() + float(self.scanner.deadline_s)
        crashes: list[str] = []
        for attempt in range(SCAN_ATTEMPTS):
            outcome = self._scan_once(path, job, deadline - time.monotonic())
            if outcome.crashed is not None:
                crashes.append(outcome.crashed)
            pause = 0.2 * 2**attempt
            if not _worth_retrying(outcome) or time.monotonic() + pause >= deadline:
                break
            log.warning("%s: %s; retrying", self.name, outcome.verdict.result)
            time.sleep(pause)
        if outcome.crashed is None:
            return outcome.verdict, None
        reason = f"the engine crashed on this file {len(crashes)} time(s): {crashes[-1]}"
        return Verdict("error", reason), reason

    def _scan_once(self, path: Path, job: ScanJob, timeout_s: float) -> Outcome:
        with self.engines.process() as engine:
            outcome = engine.scan(path, job, timeout_s)
        if outcome.crashed is not None:
            self.crashes += 1
            log.warning("%s: engine crashed on %s: %s", self.name, job.doc_id, outcome.crashed)
        return outcome

    def _emit(self, request: ScanRequest, verdict: Verdict, started: datetime) -> None:
        record = {
            "doc_id": request.doc_id,
            "tenant": request.tenant,
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
            key=request.doc_id.encode(),
            value=codec.encode("scan_verdict", record),
        )
        if self.producer.flush(30) != 0:
            raise RuntimeError("verdict not acknowledged by Kafka within 30s")
        self.scanned += 1

    def _dead_letter(self, message: Message, reason: str) -> None:
        log.warning(
            "%s: scan request at offset %s to the DLQ: %s", self.name, message.offset(), reason
        )
        headers: dict[str, str | bytes | None] = {
            "x-error": reason[:1000],
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
                    value=codec.encode("scanner_heartbeat", self.heartbeat()),
                )
                self.producer.poll(0)
            except Exception:  # a missed beat is logged; the next one may get through
                log.exception("%s: heartbeat failed", self.name)
            stop.wait(self.settings.scanner_heartbeat_s)


def _worth_retrying(outcome: Outcome) -> bool:
    """A crashed engine process, or an engine that is busy or lost its connection."""
    verdict = outcome.verdict
    transient = verdict.verdict == "error" and verdict.result.startswith(TRANSIENT)
    return outcome.crashed is not None or transient


def _safe(read: Callable[[], str]) -> str:
    try:
        return read()
    except Exception as exc:  # a version probe must not stop scanning
        return f"unknown ({type(exc).__name__})"
