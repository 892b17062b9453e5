"""Read a verdict partition again when a live scanner's answer never reached the worker.

Seen in two full test runs, under load: a worker restarted while a scanner answered,
and the document then waited for good on that live scanner, its verdict never processed by
any of the worker's agents.  Faust has known ways to drop an event it fetched: its recovery
after a rebalance clears the agents' queues (``FlowControlEvent.resume``) and skips events of
an older generation, while the fetch position stays past them (faust-streaming #216, #596);
and its commit step passes a one-event hole (``min(acked) - committed > 1`` in
``Consumer._new_offset``, where ``committed`` is the next offset to read), so not even the
next restart delivers that event again.  Which of these struck is not pinned down; this
heals any of them.

The tracker knows who it waits for.  A live scanner answers within its deadline once it
starts scanning, so a document still waiting on one long after that (:func:`streams.progress.
stalled`) has its verdict partition read again from the offset of its request's time: Faust
seeks there and delivers the partition's verdicts since then once more.  Every consumer of
``scan.verdicts`` is idempotent, so the re-read costs duplicates, never a wrong result.  When
the scanner was only far behind, the re-read finds nothing new, and is tried at most once
per partition per ``AGAIN_AFTER_MS``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import faust
from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, TopicPartition
from faust.types import TP

from ops.kafka import consumer_config
from ops.settings import Settings

log = logging.getLogger(__name__)
AGAIN_AFTER_MS = 30_000
MAX_SPAN = 1000  # verdicts: a re-read of more is not worth it (see reread())


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a keyed record lands on: Kafka's murmur2 partitioner, which both our
    clients use (``murmur2_random`` in librdkafka, the default in aiokafka)."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


def span_since(settings: Settings, topic: str, partition: int, at_ms: int) -> tuple[int, int]:
    """The first offset of ``topic[partition]`` written at or after ``at_ms`` and the
    partition's end (blocking: run it in a thread)."""
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}intellidox-reread"))
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        (found,) = consumer.offsets_for_times([TopicPartition(topic, partition, at_ms)], timeout=10)
        return (int(found.offset) if found.offset >= 0 else int(end)), int(end)
    finally:
        consumer.close()


@dataclass
class Rereads:
    """Which partitions are due a re-read: at most one per partition per ``again_after_ms``."""

    again_after_ms: int = AGAIN_AFTER_MS
    last_ms: dict[int, int] = field(default_factory=dict)  # partition -> when last re-read

    def due(self, wanted: dict[int, int], now_ms: int) -> dict[int, int]:
        """Of ``wanted`` (partition -> from when), those not re-read lately; marks them."""
        chosen = {
            p: since
            for p, since in wanted.items()
            if now_ms - self.last_ms.get(p, -self.again_after_ms) >= self.again_after_ms
        }
        self.last_ms.update((p, now_ms) for p in chosen)
        return chosen


async def reread(
    app: faust.App, settings: Settings, topic: str, partition: int, since_ms: int
) -> bool:
    """Seek this worker's consumer back to ``since_ms`` in ``topic[partition]``.  False when
    the partition is not this worker's (its owner's tracker sees to it), or when more than
    ``MAX_SPAN`` verdicts came since: a scanner that far behind is busy, not lost, and
    reading that much again would slow everything down when it is already behind."""
    tp = TP(topic, partition)
    if tp not in app.consumer.assignment():
        return False
    offset, end = await asyncio.to_thread(span_since, settings, topic, partition, since_ms)
    if end - offset > MAX_SPAN:
        log.info("not reading %s[%d] again: %d verdicts since", topic, partition, end - offset)
        return False
    await app.consumer.seek(tp, offset)
    log.warning(
        "reading %s[%d] again from offset %d (%d verdicts): a live scanner's verdict never came",
        topic,
        partition,
        offset,
        end - offset,
        extra={"stage": "tracker"},
    )
    return True
