"""The worker's view of ``scanners.registry``: who is alive, and how fresh that knowledge is.

The orchestrator lists the live scanners in each scan request; the tracker asks
:func:`liveness` once a tick.  A view is *fresh* when, a moment ago, Kafka told us the end of
every registry partition and we had read up to it: only then does "no heartbeat" mean "no live
member" rather than "we cannot hear anyone" (Kafka away, history still loading).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from ops.kafka import topic
from ops.kafka_read import aio_ends
from schemas import topics
from schemas.records import ScannerHeartbeat
from streams.app import app, settings
from streams.follow import follow_from_start
from streams.progress import Liveness

log = logging.getLogger(__name__)
STALE_MS = 3000  # a view not known complete for this long is stale
scanners: dict[str, ScannerHeartbeat] = {}  # each scanner name's latest heartbeat
loaded = asyncio.Event()  # set once the compacted history has been read


@dataclass
class _Follower:
    """The consumer following the registry right now (None between reconnects)."""

    consumer: AIOKafkaConsumer | None = None
    partitions: list[TopicPartition] = field(default_factory=list)
    complete_ms: int | None = None  # last time the view was seen complete


_follower = _Follower()


def alive(now_s: float | None = None) -> list[ScannerHeartbeat]:
    """Scanners with a heartbeat within ``scanner_alive_s``, by name."""
    now_ms = (time.time() if now_s is None else now_s) * 1000
    horizon = now_ms - settings.scanner_alive_s * 1000
    return sorted((s for s in scanners.values() if heard_ms(s) >= horizon), key=lambda s: s.name)


def heard_ms(heartbeat: ScannerHeartbeat) -> float:
    """When a scanner's latest heartbeat was sent (epoch ms)."""
    return heartbeat.at.timestamp() * 1000


def apply(key: bytes | None, value: bytes | None) -> None:
    if key is None:
        return
    name = key.decode()
    if value is None:
        scanners.pop(name, None)
        return
    scanners[name] = ScannerHeartbeat.decode(value)


async def liveness(now_ms: int) -> Liveness:
    """Who had a live member as of the moment the view was last known complete."""
    as_of = await complete_as_of()
    if as_of is None or now_ms - as_of > STALE_MS:
        return Liveness(False, frozenset())
    return Liveness(True, frozenset(s.name for s in alive(as_of / 1000)))


async def complete_as_of() -> int | None:
    """The wall-clock ms of the last fetch after which nothing in the registry was unread
    (the oldest over its partitions), or None when never known on this connection."""
    consumer, partitions = _follower.consumer, _follower.partitions
    if consumer is None or not partitions or not loaded.is_set():
        return None
    times = []
    try:
        for tp in partitions:
            end, polled = consumer.highwater(tp), consumer.last_poll_timestamp(tp)
            position = await asyncio.wait_for(consumer.position(tp), 0.5)
            if end is None or polled is None or position < end:
                return _follower.complete_ms  # reading a fresh fetch: as of the one before
            times.append(int(polled))
    except Exception:  # reconnecting, or the partition just went away: as before
        return _follower.complete_ms
    _follower.complete_ms = min(times)
    return _follower.complete_ms


@app.task
async def follow_registry() -> None:
    """Read the compacted registry from the start, then follow it."""
    await follow_from_start(settings, topic(settings, topics.SCANNERS_REGISTRY), _follow)


async def _follow(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    _follower.consumer, _follower.partitions = consumer, partitions
    try:
        await _read(consumer, partitions)
    finally:
        _follower.consumer, _follower.partitions, _follower.complete_ms = None, [], None


async def _read(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    ends = await aio_ends(consumer, partitions)
    if ends.reached:
        loaded.set()
    async for message in consumer:
        try:
            apply(message.key, message.value)
        except ValueError:
            log.warning("undecodable heartbeat at offset %d", message.offset)
        ends.read((message.topic, message.partition), message.offset)
        if ends.reached:  # every partition, not the first one read to its end
            loaded.set()
