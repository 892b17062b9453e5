"""Kafka client settings shared by every process, so all of them agree on partitioning.

librdkafka's default partitioner differs from the Java/aiokafka one; ``murmur2_random`` makes a
document's key land on the same partition number whichever client produced it, so one
document's events stay ordered and co-partitioned across topics (Faust tables rely on it).
"""

from __future__ import annotations

from typing import Any

from ops.settings import Settings


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 1,
        "compression.type": "lz4",  # aiokafka reads it with cramjam
    }
    config.update(extra)
    return config


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 20,  # events are small and latency matters more than batching
        "partition.assignment.strategy": "cooperative-sticky",
    }
    config.update(extra)
    return config


def topic(settings: Settings, name: str) -> str:
    """The physical topic name (tests and side-by-side environments use a prefix)."""
    return settings.topic_prefix + name


async def aio_partitions(consumer: Any, name: str) -> list[int]:
    """Partition ids of ``name`` for an aiokafka consumer that will ``assign()`` them.

    ``partitions_for_topic`` only knows topics the consumer already tracks, so read the
    cluster metadata afresh instead.
    """
    cluster = await consumer._client.fetch_all_metadata()
    partitions = cluster.partitions_for_topic(name)
    if not partitions:
        raise RuntimeError(
            f"topic {name} does not exist; run `intellidox up` (it bootstraps topics)"
        )
    return sorted(partitions)
