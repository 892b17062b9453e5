"""The worker's registry view against a real broker: who is alive, and whether it knows."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from ops.kafka import producer_config, topic
from ops.settings import Settings
from schemas import topics
from schemas.records import ScannerHeartbeat
from streams import registry
from streams.follow import follow_from_start
from streams.progress import Liveness

pytestmark = pytest.mark.integration


def heartbeat(name: str, at: datetime) -> ScannerHeartbeat:
    return ScannerHeartbeat(name, "Test", "Linux", "h", "h/1", "1", "1", 2.0, None, at)


def _beat(settings: Settings, name: str, at: datetime) -> None:
    record = heartbeat(name, at)
    producer = Producer(producer_config(settings))
    producer.produce(
        topic(settings, topics.SCANNERS_REGISTRY),
        key=name.encode(),
        value=record.encode(),
    )
    producer.flush(10)


@pytest.fixture
async def following(settings: Settings, kafka_topics: str) -> AsyncIterator[Settings]:
    """The registry follower on this test's topics (stopped after)."""
    ours = settings.with_overrides(topic_prefix=kafka_topics)
    task = asyncio.create_task(
        follow_from_start(ours, topic(ours, topics.SCANNERS_REGISTRY), registry._follow)
    )
    yield ours
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    registry.scanners.clear()


async def _until_fresh_with(name: str, timeout_s: float = 20) -> Liveness:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = await registry.liveness(int(time.time() * 1000))
        if view.fresh and name in registry.scanners:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"no fresh view with {name} after {timeout_s}s")


async def test_a_fresh_view_tells_the_live_from_the_gone(following: Settings) -> None:
    now = datetime.now(UTC)
    _beat(following, "gone", now - timedelta(seconds=following.scanner_alive_s + 5))
    _beat(following, "here", now)
    view = await _until_fresh_with("here")
    assert view.alive == frozenset({"here"})
    await asyncio.sleep(0.5)  # quiet: the view stays fresh while Kafka answers
    assert (await registry.liveness(int(time.time() * 1000))).fresh


async def test_without_a_follower_the_view_is_stale_and_nobody_counts_as_gone(
    settings: Settings, kafka_topics: str
) -> None:
    registry.scanners["x"] = heartbeat("x", datetime.now(UTC))
    try:
        view = await registry.liveness(int(time.time() * 1000))
    finally:
        registry.scanners.clear()
    assert view == Liveness(False, frozenset())


async def test_a_view_last_complete_long_ago_is_stale(following: Settings) -> None:
    _beat(following, "here", datetime.now(UTC))
    await _until_fresh_with("here")
    later = int(time.time() * 1000) + registry.STALE_MS + 1_000  # e.g. Kafka away since
    assert not (await registry.liveness(later)).fresh
