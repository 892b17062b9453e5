"""Scan requests in, records out: Kafka helpers for the runner tests on a test's own topics."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from ops.kafka import consumer_config, producer_config, topic
from ops.replay import read_all
from ops.settings import Settings
from schemas import codec, topics


def publish(settings: Settings, *records: dict[str, Any], key: bytes | None = None) -> None:
    """Scan requests, keyed by document (or all by ``key``: one partition)."""
    producer = Producer(producer_config(settings))
    for record in records:
        producer.produce(
            topic(settings, topics.SCAN_REQUESTS),
            key=key or str(record["doc_id"]).encode(),
            value=codec.encode("scan_request", record),
        )
    assert producer.flush(10) == 0


def read(settings: Settings, name: str) -> list[Any]:
    """Every record of the topic; a fresh topic's leader may still be moving, so retry."""
    for _ in range(20):
        try:
            return list(read_all(settings, topic(settings, name)))
        except KafkaException as exc:  # e.g. NOT_LEADER_FOR_PARTITION right after creation
            last = exc
            time.sleep(0.5)
    raise last


def wait_for(settings: Settings, name: str, count: int, timeout_s: float = 90) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = read(settings, name)
        if len(found) >= count:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{name}: {len(read(settings, name))} records, expected {count}")


def committed(settings: Settings, group: str, partition: int) -> int:
    """The group's committed offset of a scan.requests partition (negative: none yet)."""
    consumer = Consumer(consumer_config(settings, settings.topic_prefix + group))
    try:
        wanted = TopicPartition(topic(settings, topics.SCAN_REQUESTS), partition)
        return int(consumer.committed([wanted], timeout=10)[0].offset)
    finally:
        consumer.close()


def verdicts(messages: list[Any]) -> list[dict[str, Any]]:
    return [codec.decode(m.value() or b"") for m in messages]
