"""The gateway's Kafka listener against a real broker: it resumes where it stopped."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer

from gateway.hub import Hub, _consume
from ops.kafka import producer_config
from ops.settings import Settings
from schemas.events import encode_event

pytestmark = pytest.mark.integration


def _status(settings: Settings, doc_id: str, status: str) -> None:
    record = {
        "doc_id": doc_id,
        "tenant": "t",
        "status": status,
        "reason": None,
        "expected": None,
        "at": datetime.now(UTC),
    }
    producer = Producer(producer_config(settings))
    producer.produce(
        f"{settings.topic_prefix}docs.status",
        key=doc_id.encode(),
        value=encode_event("docs_status", record),
    )
    producer.flush(10)


async def test_events_sent_while_the_hub_was_away_still_arrive(
    settings: Settings, kafka_topics: str
) -> None:
    ours = settings.with_overrides(topic_prefix=kafka_topics)
    hub, doc_id = Hub(), str(uuid.uuid4())
    queue = hub.subscribe(doc_id)
    listener = asyncio.create_task(_consume(ours, hub, lambda: None))
    await asyncio.wait_for(hub.ready.wait(), 30)
    _status(ours, doc_id, "uploaded")
    first = await asyncio.wait_for(queue.get(), 10)
    assert first is not None and first.data["status"] == "uploaded"
    listener.cancel()  # Kafka "lost"
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    _status(ours, doc_id, "in_progress")  # happens while nobody listens
    listener = asyncio.create_task(_consume(ours, hub, lambda: None))
    try:
        fact = await asyncio.wait_for(queue.get(), 10)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    assert fact is not None and fact.data["status"] == "in_progress"
