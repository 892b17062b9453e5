"""The worker's view of ``scanners.registry``: who is alive, to list in scan requests."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ops.kafka import topic
from schemas import topics
from streams.app import app, settings
from streams.events import decode_event
from streams.follow import follow_from_start

log = logging.getLogger(__name__)
scanners: dict[str, dict[str, Any]] = {}
loaded = asyncio.Event()  # set once the compacted history has been read


def alive(now_s: float | None = None) -> list[dict[str, Any]]:
    """Scanners with a heartbeat within ``scanner_alive_s``, by name."""
    now_ms = (time.time() if now_s is None else now_s) * 1000
    horizon = now_ms - settings.scanner_alive_s * 1000
    return sorted(
        (s for s in scanners.values() if _ms(s["at"]) >= horizon), key=lambda s: s["name"]
    )


def _ms(value: Any) -> float:
    return value if isinstance(value, int | float) else value.timestamp() * 1000


def apply(key: bytes | None, value: bytes | None) -> None:
    if key is None:
        return
    name = key.decode()
    if value is None:
        scanners.pop(name, None)
        return
    scanners[name] = decode_event(value)


@app.task
async def follow_registry() -> None:
    """Read the compacted registry from the start, then follow it."""
    await follow_from_start(settings, topic(settings, topics.SCANNERS_REGISTRY), _follow)


async def _follow(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    ends = await consumer.end_offsets(partitions)
    if all(offset == 0 for offset in ends.values()):
        loaded.set()
    async for message in consumer:
        try:
            apply(message.key, message.value)
        except ValueError:
            log.warning("undecodable heartbeat at offset %d", message.offset)
        if message.offset + 1 >= ends[TopicPartition(message.topic, message.partition)]:
            loaded.set()
