"""Kafka → subscribers: the gateway's own view of each document's live facts.

Every gateway reads every partition of ``docs.status``, ``docs.metadata`` and
``scan.verdicts`` (no consumer group: each instance must see all events for the streams it
serves), from the end at start-up.  Facts are handed to the subscribers of their document and
kept for a short while, so a client that subscribes between a fact's arrival and its
projection into the databases still gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from gateway.sse import Fact
from ops.kafka import aio_client_kwargs, aio_partitions, topic
from ops.settings import Settings
from schemas import topics
from schemas.events import decode_as
from schemas.record import Record

log = logging.getLogger(__name__)
RECENT_S = 120.0
# Heartbeats go out a slice of the streams at a time: every period / 256 (60 ms at 15 s), 40 of
# 10,000 streams, a burst of a millisecond or two that a GET in between hardly notices.
HEARTBEAT_SLICES = 256

# After each fetch the hub waits this long before taking the next, so that under load a fetch
# brings what came meanwhile, not one event: each fetch (a request over every partition of
# three topics) cost the gateway more than the events it brought.  Idle, nothing changes: a
# fetch still waits up to ``fetch_max_wait_ms`` for the first byte.
PACE_S = 0.02
FETCH_TIMEOUT_MS = 1000

_KIND_BY_TOPIC = {
    topics.DOCS_STATUS: "status",
    topics.DOCS_METADATA: "meta",
    topics.SCAN_VERDICTS: "verdict",
}
_RECORD_BY_KIND: dict[str, type[Record]] = {
    kind: topics.contract_of(name).record for name, kind in _KIND_BY_TOPIC.items()
}


class Inbox:
    """One subscriber's facts, oldest first, for one reader.  Not an ``asyncio.Queue``: that
    is four deques and an Event, about 3 KB, held by every idle stream (10,000 of them on one
    gateway); this is a list and, while its reader waits, a future.  A ``get`` cancelled while
    waiting loses nothing.  An idle reader has no timer of its own: the hub's heartbeat task
    nudges it (:meth:`nudge`): one timer for every stream, not one per stream."""

    __slots__ = ("_facts", "_nudged", "_waiter", "sibling", "slot")

    def __init__(self, slot: int = 0, sibling: Inbox | None = None) -> None:
        self._facts: list[Fact] = []
        self._waiter: asyncio.Future[None] | None = None
        self._nudged = False
        self.slot = slot  # which of the hub's heartbeat slices nudges it
        self.sibling = sibling  # the next inbox of the same document

    def put_nowait(self, fact: Fact) -> None:
        self._facts.append(fact)
        self._wake()

    def nudge(self) -> None:
        """Time to say something: the reader's next ``get`` answers None if no fact waits."""
        self._nudged = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
            self._waiter = None

    def ready(self) -> bool:
        """A fact waits, or a nudge."""
        return bool(self._facts) or self._nudged

    def wait(self) -> asyncio.Future[None]:
        """Done once :meth:`ready`: await it, then :meth:`take`.  A future, not a coroutine,
        so that an idle stream waiting on it holds no frame for it."""
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    def take(self) -> Fact | None:
        """The next fact, or None; either way a nudge is spent (a fact is as good as a
        heartbeat)."""
        self._nudged = False
        return self._facts.pop(0) if self._facts else None

    async def get(self) -> Fact | None:
        """The next fact; None when nudged with none waiting.  (For a reader that may keep a
        frame while it waits; an event stream uses :meth:`wait` and :meth:`take`.)"""
        while not self.ready():
            await self.wait()
        return self.take()


class Hub:
    def __init__(self) -> None:
        # Each document's inboxes as a chain (Inbox.sibling), not a set or a list: one inbox
        # per document is the rule, and an empty set is 216 bytes, a list 56 and more.
        self._subscribers: dict[str, Inbox] = {}
        self._slices: list[set[Inbox]] = [set() for _ in range(HEARTBEAT_SLICES)]
        self._next_slice = itertools.count()
        self._recent: dict[str, deque[tuple[float, Fact]]] = defaultdict(deque)
        self._expiry: deque[tuple[float, str]] = deque()
        self.ready = asyncio.Event()
        self.listeners: list[Callable[[str], None]] = []  # called with each fact's doc id
        # Next offset per partition: after losing Kafka the hub resumes here, not at the end.
        self.positions: dict[TopicPartition, int] = {}

    def publish(self, doc_id: str, fact: Fact) -> None:
        now = time.monotonic()
        self._recent[doc_id].append((now, fact))
        self._expiry.append((now, doc_id))
        inbox = self._subscribers.get(doc_id)
        while inbox is not None:
            inbox.put_nowait(fact)
            inbox = inbox.sibling
        for listener in self.listeners:
            listener(doc_id)
        self._forget_old(now)

    def _forget_old(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] < now - RECENT_S:
            _, doc_id = self._expiry.popleft()
            recent = self._recent.get(doc_id)
            while recent and recent[0][0] < now - RECENT_S:
                recent.popleft()
            if recent is not None and not recent:
                del self._recent[doc_id]

    def quiet_for(self, doc_id: str) -> float:
        """Seconds since the last fact about this document (infinite if none is recent)."""
        recent = self._recent.get(doc_id)
        return time.monotonic() - recent[-1][0] if recent else float("inf")

    def recent(self, doc_id: str) -> list[Fact]:
        return [fact for _, fact in self._recent.get(doc_id, ())]

    def subscribe(self, doc_id: str) -> Inbox:
        """A new inbox for ``doc_id``'s facts; :meth:`unsubscribe` it when done.  (Not a
        context manager: its generator would be held by every open stream.)"""
        slot = next(self._next_slice) % HEARTBEAT_SLICES
        inbox = self._subscribers[doc_id] = Inbox(slot, self._subscribers.get(doc_id))
        self._slices[slot].add(inbox)
        return inbox

    def unsubscribe(self, doc_id: str, inbox: Inbox) -> None:
        self._slices[inbox.slot].discard(inbox)
        head = self._subscribers.get(doc_id)
        if head is inbox:
            if inbox.sibling is None:
                del self._subscribers[doc_id]
            else:
                self._subscribers[doc_id] = inbox.sibling
            return
        while head is not None and head.sibling is not inbox:
            head = head.sibling
        if head is not None:
            head.sibling = inbox.sibling

    def nudge_slice(self, slot: int) -> None:
        """Nudge every inbox of one heartbeat slice."""
        for inbox in self._slices[slot]:
            inbox.nudge()


async def heartbeats(hub: Hub, period_s: float) -> None:
    """Nudge each inbox once per ``period_s``, a slice at a time, so that 10,000 idle streams
    send their heartbeats spread over the period rather than all at once."""
    for slot in itertools.cycle(range(HEARTBEAT_SLICES)):
        await asyncio.sleep(period_s / HEARTBEAT_SLICES)
        hub.nudge_slice(slot)


def fact_from_message(kind: str, offset: int, value: bytes) -> tuple[str, Fact]:
    """The typed record its topic carries (ValueError for anything else), as the fields the
    event stream shows (a fact's ``data`` is the API's JSON view: gateway/sse.py)."""
    data = decode_as(_RECORD_BY_KIND[kind], value).to_record()
    return str(data["doc_id"]), Fact(kind, offset, data)


async def _consume(settings: Settings, hub: Hub, on_error: Callable[[], None]) -> None:
    names = {topic(settings, name): kind for name, kind in _KIND_BY_TOPIC.items()}
    consumer = AIOKafkaConsumer(
        **aio_client_kwargs(settings),  # the gateway's principal
        enable_auto_commit=False,
        fetch_max_wait_ms=500,  # fetch_min_bytes=1: a fetch is answered as soon as data comes
        group_id=None,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(name, p) for name in names for p in await aio_partitions(consumer, name)
        ]
        consumer.assign(partitions)
        fresh = [tp for tp in partitions if tp not in hub.positions]
        if fresh:
            await consumer.seek_to_end(*fresh)
        for tp in partitions:  # resolve every start offset now, before we say we are ready
            if tp in hub.positions:
                consumer.seek(tp, hub.positions[tp])
            hub.positions[tp] = await consumer.position(tp)
        hub.ready.set()
        while True:
            fetched = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS)
            publish_fetch(hub, names, fetched, on_error)
            await asyncio.sleep(PACE_S)
    finally:
        await consumer.stop()


def publish_fetch(
    hub: Hub,
    kinds: dict[str, str],
    fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    on_error: Callable[[], None],
) -> None:
    """Publish one fetch's events (``kinds``: topic name -> fact kind) and move the hub's
    positions past them, so that a reconnect resumes after the last one."""
    for tp, messages in fetched.items():
        kind = kinds[tp.topic]
        for message in messages:
            _dispatch(hub, kind, message.offset, message.value, on_error)
        if messages:
            hub.positions[tp] = messages[-1].offset + 1


def _dispatch(
    hub: Hub, kind: str, offset: int, value: bytes | None, on_error: Callable[[], None]
) -> None:
    try:
        doc_id, fact = fact_from_message(kind, offset, value or b"")
    except Exception:  # a poison event must not stop the live view; the DLQ is the workers' job
        log.exception("undecodable %s event at offset %d", kind, offset)
        on_error()
        return
    hub.publish(doc_id, fact)


@contextlib.asynccontextmanager
async def running_hub(settings: Settings, on_error: Callable[[], None]) -> AsyncIterator[Hub]:
    hub = Hub()
    tasks = [
        asyncio.create_task(_consume_forever(settings, hub, on_error)),
        asyncio.create_task(heartbeats(hub, settings.sse_heartbeat_s)),
    ]
    try:
        await asyncio.wait_for(hub.ready.wait(), timeout=30)
        yield hub
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _consume_forever(settings: Settings, hub: Hub, on_error: Callable[[], None]) -> None:
    while True:
        try:
            await _consume(settings, hub, on_error)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event hub lost Kafka; reconnecting in 1s")
            await asyncio.sleep(1)
