"""One consumer of a scanner's group, with up to ``inflight`` requests of its partitions at once.

A consumer used to scan one request at a time, so a vendor taking three seconds per file
managed a third of a document per second per consumer, and the topic's partition count
capped the consumers.  Now the consumer hands each request to a pool of ``inflight`` worker
threads (the scans side by side) and keeps polling while fewer than ``queued`` requests are
taken and unfinished; at that mark it pauses its partitions (still polling, so it stays in
the group and sees rebalances) and resumes once half of them are done.  It first waits up to
``FULL_WAIT_S`` for that without pausing: pausing drops what was prefetched and a resumed
partition waits for the broker's current long poll (``fetch.wait.max.ms``), so a consumer that
paused at every request managed two requests per long poll.

A consumer of low-priority work (rescans) has a ``gate``: a request it took waits on its
worker thread until the gate opens.  The gate never pauses the partitions by itself: it opens
and closes with every request under load, and the rescan consumers of an idle topic used to
pause and resume at each change (librdkafka calls made holding the GIL, up to a sixth of a
scanner host's Python time).  A waiting request fills the consumer's queue, and a full queue
pauses as above, so rescans still wait in Kafka behind new documents.

A request finishes when its verdict (and DLQ record, if any) is acknowledged by Kafka; offsets
are committed in order per partition (:mod:`scanners.inflight`), at most every
``COMMIT_EVERY_S`` and once more when the consumer stops.  A stop takes no new requests, lets
those being scanned finish (up to ``drain_s``; those still queued are left to the group),
commits and leaves the group.  A partition lost in a rebalance gets its finished prefix
committed first (on revoke; not when the group says it is already lost), and its requests
not yet started are dropped: the new owner has them.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Callable
from time import monotonic
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from scanners.inflight import InFlight, Partition, Ticket

log = logging.getLogger(__name__)
POLL_S = 0.2
COMMIT_EVERY_S = 0.5
QUEUED_AT_LEAST = 64
# How long a full consumer waits for its queue to drain before it pauses: pausing drops what
# was prefetched, and a resumed partition waits for the broker's current long poll.
FULL_WAIT_S = 1.0
# How often a request held by a closed gate looks again (a stop ends the wait at once).
GATE_POLL_S = 0.05
# Called on a worker thread with the request and a ``done`` to call once, when it is finished.
Process = Callable[[Message, Callable[[], None]], None]


def queue_size(inflight: int) -> int:
    """Requests a consumer takes before it pauses: twice what it scans at once, and enough
    to keep an instant engine busy through a paused partition's refetch."""
    return max(2 * inflight, QUEUED_AT_LEAST)


class RequestConsumer:
    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        inflight: int,
        name: str,
        drain_s: float,
        queued: int | None = None,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.gate = gate  # when it says no, taken requests wait (low-priority work)
        self.topic = topic
        self.name = name
        self.drain_s = drain_s
        self.inflight = max(1, inflight)
        self.flight = InFlight(queued or queue_size(self.inflight))
        self._consumer: Consumer | None = None
        self._paused = False
        self._assigned = False  # partitions came since the last step: paused too if we are
        self._committed_at = 0.0
        self._stopping = threading.Event()

    def run(self, process: Process, stop: threading.Event) -> None:
        """Consume until ``stop``; then finish what is in flight, commit and leave."""
        self.flight = InFlight(self.flight.limit)  # what a failed run took is redelivered
        self._stopping.clear()
        work: queue.SimpleQueue[tuple[Message, Ticket] | None] = queue.SimpleQueue()
        for i in range(self.inflight):
            name = f"{self.name}-w{i}"
            threading.Thread(target=self._work, args=(work, process), name=name).start()
        consumer = self._consumer = Consumer({**self.config, "on_commit": self._committed})
        try:
            consumer.subscribe(
                [self.topic], on_assign=self._got, on_revoke=self._revoked, on_lost=self._lost
            )
            while not stop.is_set():
                self._step(consumer, work)
            self._drain(consumer)
        finally:
            for _ in range(self.inflight):
                work.put(None)  # each worker ends after the request in its hands
            consumer.close()  # leaves the group: a peer takes over at once

    def _step(
        self, consumer: Consumer, work: queue.SimpleQueue[tuple[Message, Ticket] | None]
    ) -> None:
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
        work.put((message, ticket))

    def _work(
        self, work: queue.SimpleQueue[tuple[Message, Ticket] | None], process: Process
    ) -> None:
        """A worker thread: one request at a time, until told to end."""
        while (item := work.get()) is not None:
            message, ticket = item
            if not self._may_start(ticket):
                self.flight.abandon(ticket)  # stopping, or its partition moved while it waited
                continue
            try:
                process(message, functools.partial(self.flight.finish, ticket))
            except Exception:  # the runner handles its own failures; this is a bug: go on
                log.exception("%s: request at offset %s failed", self.name, ticket.offset)

    def _may_start(self, ticket: Ticket) -> bool:
        """True once the gate (if any) is open and the request is still ours; False when the
        consumer stops or loses the request's partition first."""
        while self.gate is not None and not self.gate():
            if not self._still_ours(ticket):
                return False
            self._stopping.wait(GATE_POLL_S)
        return self._still_ours(ticket)

    def _still_ours(self, ticket: Ticket) -> bool:
        return not self._stopping.is_set() and self.flight.owns(ticket)

    def _flow(self, consumer: Consumer) -> None:
        """Pause or resume the partitions when :meth:`_should_pause` changes its mind (and
        pause partitions assigned meanwhile); nothing when it does not."""
        pause = self._should_pause()
        if pause and (not self._paused or self._assigned):
            consumer.pause(consumer.assignment())
        elif not pause and self._paused:
            consumer.resume(consumer.assignment())
        self._paused, self._assigned = pause, False

    def _should_pause(self) -> bool:
        """At the queue's mark, wait a moment for half of it to be done (Kafka keeps what it
        prefetched); when that takes longer, pause until half is done."""
        if self.flight.full and not self._paused and self.flight.wait_low(FULL_WAIT_S):
            return False
        return self.flight.full or (self._paused and not self.flight.low)

    def _commit_due(self, consumer: Consumer, force: bool = False) -> None:
        now = monotonic()
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
        """Requests being scanned finish and are committed; those still queued are left."""
        self._stopping.set()
        consumer.pause(consumer.assignment())
        deadline = monotonic() + self.drain_s
        while not self.flight.wait_empty(POLL_S) and monotonic() < deadline:
            consumer.poll(0)  # serve the group (heartbeats run on their own)
        self._commit_due(consumer, force=True)

    def _committed(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """A commit's outcome (inside poll): a failed one is handed out again, else a
        request finished last would stay uncommitted until the next one finishes."""
        for tp in partitions:
            if error is not None or tp.error is not None:
                log.warning("%s: commit of %s failed: %s", self.name, tp, error or tp.error)
                self.flight.retry((tp.topic, tp.partition), tp.offset)

    # -- rebalances (called inside poll, on the consumer's thread) -------------------------
    def _got(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = True  # the client assigns them after this returns

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = [(tp.topic, tp.partition) for tp in partitions]
        self._commit(consumer, self.flight.due(lost), asynchronous=False)
        self.flight.forget(lost)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.flight.forget([(tp.topic, tp.partition) for tp in partitions])
