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
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from gateway.sse import Fact
from ops.kafka import aio_client_kwargs, aio_partitions, topic
from ops.settings import Settings
from schemas import topics
from schemas.events import decode_as
from schemas.record import Record

log = logging.getLogger(__name__)
RECENT_S = 120.0

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
    waiting loses nothing."""

    __slots__ = ("_facts", "_waiter")

    def __init__(self) -> None:
        self._facts: list[Fact] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, fact: Fact) -> None:
        self._facts.append(fact)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Fact:
        while not self._facts:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._facts.pop(0)


class Hub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Inbox]] = defaultdict(set)
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
        for queue in self._subscribers.get(doc_id, ()):
            queue.put_nowait(fact)
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

    @contextlib.contextmanager
    def subscribe(self, doc_id: str) -> Any:
        queue = Inbox()
        self._subscribers[doc_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[doc_id].discard(queue)
            if not self._subscribers[doc_id]:
                del self._subscribers[doc_id]


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
        async for message in consumer:
            _dispatch(hub, names[message.topic], message.offset, message.value, on_error)
            hub.positions[TopicPartition(message.topic, message.partition)] = message.offset + 1
    finally:
        await consumer.stop()


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
    task = asyncio.create_task(_consume_forever(settings, hub, on_error))
    try:
        await asyncio.wait_for(hub.ready.wait(), timeout=30)
        yield hub
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _consume_forever(settings: Settings, hub: Hub, on_error: Callable[[], None]) -> None:
    while True:
        try:
            await _consume(settings, hub, on_error)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event hub lost Kafka; reconnecting in 1s")
            await asyncio.sleep(1)
