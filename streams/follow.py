"""Follow a compacted topic from its start, in every worker (no consumer group), forever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from ops.kafka import aio_client_kwargs, aio_partitions
from ops.settings import Settings

log = logging.getLogger(__name__)
Follower = Callable[[AIOKafkaConsumer, list[TopicPartition]], Awaitable[None]]


async def follow_from_start(settings: Settings, name: str, follow: Follower) -> None:
    """Assign every partition of ``name``, rewind, and hand the consumer to ``follow``;
    reconnect and start over (it is a compacted topic: cheap) whenever anything fails."""
    while True:
        consumer = AIOKafkaConsumer(
            **aio_client_kwargs(settings),  # the process's own principal
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=500,  # answered as soon as data comes (fetch_min_bytes=1)
        )
        try:
            await consumer.start()
            partitions = [TopicPartition(name, p) for p in await aio_partitions(consumer, name)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            await follow(consumer, partitions)
        except Exception:
            log.exception("following %s failed; starting over in 1s", name)
            await asyncio.sleep(1)
        finally:
            await consumer.stop()
