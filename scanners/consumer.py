"""One consumer of a scanner's group, with up to ``inflight`` requests of its partitions at once.

A consumer used to scan one request at a time, so a vendor taking three seconds per file
managed a third of a document per second per consumer, and the topic's partition count
capped the consumers.  Now the consumer hands each request to a worker thread and keeps
polling until ``inflight`` requests are open; then it pauses its partitions (still polling,
so it stays in the group and sees rebalances) and resumes as requests finish.  A request
finishes when its verdict (and DLQ record, if any) is acknowledged by Kafka; offsets are
committed in order per partition (:mod:`scanners.inflight`), at most every
``COMMIT_EVERY_S`` and once more when the consumer stops.

A stop takes no new requests, lets the ones in flight finish (up to ``drain_s``), commits
and leaves the group.  A partition lost in a rebalance gets its finished prefix committed
first (on revoke; not when the group says it is already lost).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from scanners.inflight import InFlight, Partition, Ticket

log = logging.getLogger(__name__)
POLL_S = 0.2
COMMIT_EVERY_S = 0.5
# Called on a worker thread with the request and a ``done`` to call once it is finished.
Process = Callable[[Message, Callable[[], None]], None]


class RequestConsumer:
    def __init__(
        self, config: dict[str, Any], topic: str, inflight: int, name: str, drain_s: float
    ) -> None:
        self.config = config
        self.topic = topic
        self.name = name
        self.drain_s = drain_s
        self.flight = InFlight(inflight)
        self._consumer: Consumer | None = None
        self._paused = False
        self._committed_at = 0.0

    def run(self, process: Process, stop: threading.Event) -> None:
        """Consume until ``stop``; then finish what is in flight, commit and leave."""
        workers = ThreadPoolExecutor(self.flight.limit, thread_name_prefix=self.name)
        consumer = self._consumer = Consumer(self.config)
        try:
            consumer.subscribe([self.topic], on_revoke=self._revoked, on_lost=self._lost)
            while not stop.is_set():
                self._step(consumer, workers, process)
            self._drain(consumer)
        finally:
            workers.shutdown(wait=False)
            consumer.close()  # leaves the group: a peer takes over at once

    def _step(self, consumer: Consumer, workers: ThreadPoolExecutor, process: Process) -> None:
        self._commit_due(consumer)
        self._flow(consumer)
        message = consumer.poll(POLL_S)
        if message is None:
            return
        error = message.error()
        if error is not None:
            log.warning("%s: kafka: %s", self.name, error)
            return
        ticket = self.flight.take(
            (message.topic() or "", message.partition() or 0), message.offset() or 0
        )
        workers.submit(self._run_one, process, message, ticket)

    def _run_one(self, process: Process, message: Message, ticket: Ticket) -> None:
        finished = threading.Event()

        def done() -> None:
            if not finished.is_set():
                finished.set()
                self.flight.finish(ticket)

        try:
            process(message, done)
        except Exception:  # the runner handles its own failures; this is a bug: keep going
            log.exception("%s: request at offset %s failed", self.name, ticket.offset)

    def _flow(self, consumer: Consumer) -> None:
        """Pause the partitions while the window is full, resume when it is not."""
        full = self.flight.full
        if full:  # every time: a partition assigned meanwhile is paused too
            consumer.pause(consumer.assignment())
        elif self._paused:
            consumer.resume(consumer.assignment())
        self._paused = full

    def _commit_due(self, consumer: Consumer, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._committed_at < COMMIT_EVERY_S:
            return
        self._committed_at = now
        self._commit(consumer, self.flight.due(), asynchronous=not force)

    def _commit(self, consumer: Consumer, due: dict[Partition, int], asynchronous: bool) -> None:
        if not due:
            return
        offsets = [TopicPartition(t, p, offset) for (t, p), offset in due.items()]
        try:
            if asynchronous:
                consumer.commit(offsets=offsets, asynchronous=True)
            else:
                consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # e.g. mid-rebalance: the next commit carries it
            log.warning("%s: commit failed: %s", self.name, exc)

    def _drain(self, consumer: Consumer) -> None:
        consumer.pause(consumer.assignment())
        deadline = time.monotonic() + self.drain_s
        while not self.flight.wait_empty(POLL_S) and time.monotonic() < deadline:
            consumer.poll(0)  # serve the group (heartbeats run on their own)
        self._commit_due(consumer, force=True)

    # -- rebalances (called inside poll, on the consumer's thread) -------------------------
    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = [(tp.topic, tp.partition) for tp in partitions]
        self._commit(consumer, self.flight.due(lost), asynchronous=False)
        self.flight.forget(lost)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.flight.forget([(tp.topic, tp.partition) for tp in partitions])
