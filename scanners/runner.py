"""The scanner runner: Kafka in, verdicts out, one consumer group per scanner name.

Pure Python plus confluent-kafka, no POSIX-only calls, so the same runner works on a Windows
host.  Each consumer keeps up to ``inflight`` requests in flight (:mod:`scanners.consumer`),
scanned side by side by a bounded pool of engine processes, and the verdicts go out through
the process's one producer (:mod:`scanners.sender`).  At-least-once: a request's offset is
committed only once its verdict, and every earlier request's of its partition, is
acknowledged; a runner killed mid-scan leaves the request to another instance of its group,
and the verdict table keeps one row per (document, scanner) either way.

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

import functools
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

from confluent_kafka import Message

from ops.backoff import Backoff, GaveUp, retrying_sync
from ops.filetype import HEAD_BYTES, also_readable
from ops.kafka import consumer_config, topic
from ops.logs import log_context
from ops.metrics import DEAD_LETTERS
from ops.settings import Settings
from scanners import rescans
from scanners.base import ScanJob, Scanner, Verdict
from scanners.consumer import RequestConsumer
from scanners.downloads import SharedDownloads
from scanners.isolation import EnginePool, EngineSpec, Outcome
from scanners.metrics import ENGINE_CRASHES, SCAN_DURATION, VERDICTS
from scanners.requests import Rescan, ScanRequest, parse_encoded
from scanners.sender import Headers, Record, Sender
from schemas import topics
from schemas.dead_letters import DeadLetter
from schemas.records import ScannerHeartbeat, ScanVerdict

log = logging.getLogger(__name__)
SCAN_ATTEMPTS = 3  # per request: transient engine errors and engine crashes alike
ENGINE_PAUSE_S = 0.2  # before the second try of an engine; doubles
REQUEST = Backoff(
    attempts=SCAN_ATTEMPTS, base_s=1.0, cap_s=5.0
)  # a request that fails unexpectedly
# Engine processes per scanner name unless its `engines` option says otherwise (~10 MB each).
ENGINES_AT_MOST = 64


@dataclass(frozen=True)
class Scan:
    """What became of one request: the verdict, and why it also goes to the DLQ, if it does."""

    verdict: Verdict
    started: datetime
    dead_letter: str | None = None
    engine_ran: bool = True  # False: refused by type, the verdict carries no engine versions


@dataclass(frozen=True)
class Reply:
    """What a request makes the runner send: a verdict, a DLQ record, both or nothing."""

    verdict: Record | None = None
    dead_letter: Record | None = None


class Runner:
    def __init__(
        self,
        settings: Settings,
        name: str,
        scanner: Scanner,
        downloads: SharedDownloads | None = None,
        sender: Sender | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.scanner = scanner
        self.instance = f"{socket.gethostname()}/{os.getpid()}"
        self.downloads = downloads or SharedDownloads()
        self._sender, self._own_sender = sender, sender is None
        # Consumers in this process (Kafka spreads the partitions over them), each keeping up
        # to `inflight` requests in flight; the engine processes are shared by all of them.
        self.concurrency = max(1, int(scanner.options.get("concurrency", "1")))
        self.inflight = max(1, int(scanner.option("inflight", scanner.inflight, int)))
        default_engines = min(self.inflight * self.concurrency, ENGINES_AT_MOST)
        engines = int(scanner.option("engines", default_engines, int))
        memory_mb = int(scanner.options.get("memory_mb", settings.scanner_memory_mb))
        spec = EngineSpec(type(scanner), dict(scanner.options), memory_mb)
        self.engines = EnginePool(spec, engines)
        self.scanned = 0
        self.crashes = 0
        self._scan_time = SCAN_DURATION.labels(name)  # the label looked up once
        self._consumers: list[RequestConsumer] = []
        self._rescans: RequestConsumer | None = None  # scan.rescans, low priority

    @property
    def sender(self) -> Sender:
        if self._sender is None:
            self._sender = Sender(self.settings)
        return self._sender

    @property
    def in_flight(self) -> int:
        return sum(len(consumer.flight) for consumer in self._consumers)

    def engine_processes(self) -> int:
        return len(self.engines.pids())

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.engines.start()  # before the first heartbeat: registered means ready to scan
        try:
            threading.Thread(target=self._heartbeats, args=(stop,), daemon=True).start()
            drain_s = float(self.scanner.deadline_s) + 10
            self._consumers = [
                RequestConsumer(
                    self._consumer_config(),
                    topic(self.settings, topics.SCAN_REQUESTS),
                    self.inflight,
                    f"{self.name}-{i}",
                    drain_s,
                )
                for i in range(self.concurrency)
            ]
            self._rescans = rescans.rescan_consumer(
                self._consumer_config(rescans.GROUP_SUFFIX),
                self.settings,
                self.name,
                drain_s,
                self._engines_to_spare,
            )
            workers = [
                threading.Thread(target=self._consume, args=(c, stop), name=c.name)
                for c in [*self._consumers, self._rescans]
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            if self._own_sender and self._sender is not None:
                self._sender.close(10)
            self.engines.close()

    def _engines_to_spare(self) -> bool:
        """New documents hold fewer requests than are scanned at once: a rescan may go."""
        return self.in_flight < self.inflight * self.concurrency

    def _consumer_config(self, group_suffix: str = "") -> dict[str, Any]:
        session_ms = int(self.settings.scanner_session_timeout_s * 1000)
        return consumer_config(
            self.settings,
            self.settings.topic_prefix + self.name + group_suffix,
            **{
                "max.poll.interval.ms": int(max(300.0, self.scanner.deadline_s * 3) * 1000),
                "session.timeout.ms": session_ms,  # a crashed peer's work moves after this
                "heartbeat.interval.ms": max(1000, session_ms // 4),
            },
        )

    def _consume(self, consumer: RequestConsumer, stop: threading.Event) -> None:
        """A consumer never dies while the runner is on: whatever breaks (Kafka away for
        long), it reconnects and the group redelivers what was not committed."""
        while not stop.is_set():
            try:
                consumer.run(self.process, stop)
            except Exception:
                log.exception("%s: consumer failed; reconnecting in 1s", self.name)
                stop.wait(1)

    def process(self, message: Message, done: Callable[[], None]) -> None:
        """Handle one request on a worker thread; ``done`` once what it sends is acknowledged."""
        with log_context(
            stage="scanner",
            scanner=self.name,
            doc_id=(message.key() or b"").decode(errors="replace") or None,
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
        ):
            reply = self._reply(message)
        if reply.dead_letter is None:
            if reply.verdict is None:
                done()  # nothing to send: not asked
            else:
                self.sender.send(reply.verdict, functools.partial(self._scanned, done))
            return
        if reply.verdict is None:
            self.sender.send(reply.dead_letter, done)
            return
        both = _Countdown(2, done)
        self.sender.send(reply.verdict, functools.partial(self._scanned, both.tick))
        self.sender.send(reply.dead_letter, both.tick)

    def _scanned(self, then: Callable[[], None]) -> None:
        self.scanned += 1  # acknowledgements all run on the sender's one thread
        then()

    def _reply(self, message: Message) -> Reply:
        """Handle a request; an unexpected failure is tried again a few times, then the
        request goes to the DLQ with the reason (never an endless redelivery)."""

        def retried(tries: int, pause: float, exc: BaseException) -> None:
            log.exception("%s: request failed; retrying it", self.name)

        try:
            return retrying_sync(lambda: self.handle(message), [(Exception, REQUEST)], retried)
        except GaveUp as gave_up:
            last = gave_up.last
            return Reply(dead_letter=self._dead_letter(message, f"{type(last).__name__}: {last}"))

    def handle(self, message: Message) -> Reply:
        try:
            request = parse_encoded(message.value() or b"")
        except ValueError as exc:  # undecodable, or a field that does not fit
            return Reply(dead_letter=self._dead_letter(message, f"{type(exc).__name__}: {exc}"))
        if self.name not in request.scanners:
            return Reply()  # not asked (reused, or this scanner joined after the fan-out)
        if rescans.unaffected(self.scanner, self.name, request):
            return Reply()  # a rescan the engine knows cannot change the verdict
        with log_context(doc_id=request.doc_id, tenant=request.tenant):
            log.info("%s: scanning %s", self.name, request.doc_id)  # which instance took it
            started = time.monotonic()
            scan = self.scan_request(request)
            took = time.monotonic() - started
            log.info(
                "%s: verdict %s",
                self.name,
                scan.verdict.verdict,
                extra={"verdict": scan.verdict.verdict, "duration_ms": int(took * 1000)},
            )
        self._scan_time.observe(took)
        VERDICTS.labels(self.name, scan.verdict.verdict).inc()
        verdict = self._verdict(request, scan)
        if request.rescan is not None:
            return self._rescan_reply(message, request.rescan, scan, verdict)
        if scan.dead_letter is None:
            return Reply(verdict)
        return Reply(verdict, self._dead_letter(message, scan.dead_letter))

    def _rescan_reply(self, message: Message, rescan: Rescan, scan: Scan, verdict: Record) -> Reply:
        """Only a changed, conclusive verdict is sent; an inconclusive one is dead-lettered."""
        decision = rescans.counted(
            self.name, rescans.decide(rescan, scan.verdict, scan.dead_letter)
        )
        if decision.dead_letter is not None:
            return Reply(dead_letter=self._dead_letter(message, decision.dead_letter))
        return Reply(verdict) if decision.publish else Reply()

    # -- one request ------------------------------------------------------------------------
    def scan_request(self, request: ScanRequest) -> Scan:
        """Download, then scan with the engine's own deadline (not the fan-out's)."""
        started = datetime.now(UTC)
        job = request.job()
        limit = self.scanner.max_file_size
        if limit is not None and job.file_size > limit:
            too_large = Verdict("too_large", f"{job.file_size} bytes is over this engine's {limit}")
            return Scan(too_large, started)
        window = self.download_window(request, time.time())
        try:
            with self.downloads.fetch(request.download_url, job.sha256, window) as path:
                if job.file_type is not None and not self.reads_as_taken(path, job.file_type):
                    refused = self.scanner.refusal(self.name, job.file_type)
                    return Scan(refused, started, engine_ran=False)
                verdict, crashed = self._scan_with_retries(path, job)
        except OSError as exc:
            return Scan(Verdict("error", f"could not download the object: {exc}"), started)
        return Scan(verdict, started, crashed)

    def reads_as_taken(self, path: Path, file_type: str) -> bool:
        """The orchestrator asks a scanner that takes the request's type or one the bytes can
        also be read as (``docs.metadata`` also_types, not in the request: so read again
        here); a worker that read an older heartbeat of this scanner may ask anyway."""
        if self.scanner.takes(file_type):
            return True
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
        return any(self.scanner.takes(t) for t in also_readable(head, path, file_type))

    def download_window(self, request: ScanRequest, now: float) -> float:
        """How long a storage outage is retried: while the request's URL is valid.  Our
        storage being away is not the engine's time (the clock waits, issue 9); only an
        outage that outlives the URL becomes an ``error``.  At least the deadline."""
        deadline = float(self.scanner.deadline_s)
        if request.url_expires_at is None:
            return deadline
        return max(deadline, request.url_expires_at - now)

    def _scan_with_retries(self, path: Path, job: ScanJob) -> tuple[Verdict, str | None]:
        """Scan in an engine process; retry a busy engine or a crashed process with backoff
        while the deadline allows, at most SCAN_ATTEMPTS times.  The deadline counts the
        engine's time only (not a wait for a free engine process).  Returns the verdict and,
        when the engine crashed on every try, the reason for the DLQ."""
        budget, spent = float(self.scanner.deadline_s), 0.0
        crashes: list[str] = []
        for attempt in range(SCAN_ATTEMPTS):
            outcome, took = self._scan_once(path, job, budget - spent)
            spent += took
            if outcome.crashed is not None:
                crashes.append(outcome.crashed)
            pause = ENGINE_PAUSE_S * 2**attempt
            if not _worth_retrying(outcome) or spent + pause >= budget:
                break
            log.warning("%s: %s; retrying", self.name, outcome.verdict.result)
            time.sleep(pause)
            spent += pause
        if outcome.crashed is None:
            return outcome.verdict, None
        reason = f"the engine crashed on this file {len(crashes)} time(s): {crashes[-1]}"
        return Verdict("error", reason), reason

    def _scan_once(self, path: Path, job: ScanJob, timeout_s: float) -> tuple[Outcome, float]:
        """One scan and the engine time it took (starting a new process is not counted)."""
        with self.engines.process() as engine:
            engine.start()
            started = time.monotonic()
            outcome = engine.scan(path, job, timeout_s)
            took = time.monotonic() - started
        if outcome.crashed is not None:
            self.crashes += 1
            ENGINE_CRASHES.labels(self.name).inc()
            log.warning("%s: engine crashed on %s: %s", self.name, job.doc_id, outcome.crashed)
        return outcome, took

    def _verdict(self, request: ScanRequest, scan: Scan) -> Record:
        verdict, ran = scan.verdict, scan.engine_ran
        record = ScanVerdict(
            doc_id=request.doc_id,
            tenant=request.tenant,
            scanner=self.name,
            vendor=self.scanner.vendor_label,
            verdict=verdict.verdict,
            result=verdict.result[:2000],
            engine_version=_safe(self.scanner.engine_version) if ran else "",
            signatures_version=_safe(self.scanner.signatures_version) if ran else "",
            start_at=scan.started,
            end_at=datetime.now(UTC),
            rescan=rescans.rescan_of(request),
        )
        return Record(topic(self.settings, topics.SCAN_VERDICTS), record.kafka_key, record.encode())

    def _dead_letter(self, message: Message, reason: str) -> Record:
        log.warning("%s: dead-lettered: %s", self.name, reason, extra={"reason": reason})
        source = rescans.source_topic(self.settings, message.topic())  # requests or rescans
        DEAD_LETTERS.labels(source).inc()
        letter = DeadLetter.now(
            reason,
            "scanner",
            message.topic() or topic(self.settings, source),
            message.partition(),
            message.offset(),
            scanner=self.name,
        )
        headers: Headers = dict(letter.headers())
        return Record(
            topic(self.settings, topics.dlq(source)),
            message.key(),
            message.value(),
            headers,
        )

    # -- heartbeats -------------------------------------------------------------------------
    def heartbeat(self) -> ScannerHeartbeat:
        accepts = self.scanner.accepts
        return ScannerHeartbeat(
            name=self.name,
            vendor=self.scanner.vendor_label,
            os=f"{platform.system()} {platform.release()}",
            host=socket.gethostname(),
            instance=self.instance,
            engine_version=_safe(self.scanner.engine_version),
            signatures_version=_safe(self.scanner.signatures_version),
            deadline_s=float(self.scanner.deadline_s),
            max_file_size=self.scanner.max_file_size,
            at=datetime.now(UTC),
            accepts=None if accepts is None else tuple(sorted(accepts)),
        )

    def _heartbeats(self, stop: threading.Event) -> None:
        """Heartbeats; meanwhile engine processes a burst left idle stop, and downloads no
        scanner asked for again are deleted."""
        while not stop.is_set():
            try:
                beat = self.heartbeat()
                registry = topic(self.settings, topics.SCANNERS_REGISTRY)
                self.sender.send(Record(registry, beat.kafka_key, beat.encode()))
                self.engines.retire_idle()
                self.downloads.evict()
            except Exception:  # a missed beat is logged; the next one may get through
                log.exception("%s: heartbeat failed", self.name)
            stop.wait(self.settings.scanner_heartbeat_s)


class _Countdown:
    """Calls ``then`` at the ``count``-th tick (ticks come from the sender's one thread)."""

    def __init__(self, count: int, then: Callable[[], None]) -> None:
        self.left, self.then = count, then

    def tick(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.then()


def _worth_retrying(outcome: Outcome) -> bool:
    """A crashed engine process, or an engine that is busy or lost its connection."""
    return outcome.crashed is not None or outcome.transient


def _safe(read: Callable[[], str]) -> str:
    try:
        return read()
    except Exception as exc:  # a version probe must not stop scanning
        return f"unknown ({type(exc).__name__})"
