"""The outbox relay: publishes rows the gateway committed to Postgres, then deletes them.

At-least-once by construction: a row is deleted only after Kafka acknowledged it, in the same
transaction that locked it (``FOR UPDATE SKIP LOCKED`` lets many gateways relay side by side).
A crash between the ack and the commit re-publishes the row; every consumer is idempotent.
``NOTIFY outbox`` wakes the relay at once, and a slow poll catches anything missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from psycopg import AsyncConnection

from ops.kafka import producer_config, topic
from ops.settings import Settings
from schemas import topics

log = logging.getLogger(__name__)
BATCH = 500
POLL_S = 1.0


Row = tuple[int, str, str, bytes]
# Kafka errors that no retry will fix: the row moves to outbox_dead instead of blocking.
PERMANENT = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
    }
)


@dataclass
class Sent:
    """What happened to each row of a batch."""

    delivered: list[int] = field(default_factory=list)
    dead: dict[int, str] = field(default_factory=dict)
    retry: int = 0


def _publish(producer: Producer, rows: list[Row]) -> Sent:
    sent = Sent()

    def outcome(row_id: int) -> Any:
        def on_delivery(err: KafkaError | None, message: Any) -> None:
            if err is None:
                sent.delivered.append(row_id)
                _log_published(message)
            elif err.code() in PERMANENT:
                sent.dead[row_id] = str(err)
            else:
                failed[row_id] = (message.topic() if message is not None else None, str(err))

        return on_delivery

    failed: dict[int, tuple[str | None, str]] = {}

    for row_id, name, key, payload in rows:
        try:
            producer.produce(name, value=payload, key=key.encode(), on_delivery=outcome(row_id))
        except (KafkaException, BufferError) as exc:  # refused before it was queued
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if error is not None and error.code() in PERMANENT:
                sent.dead[row_id] = str(error)
            else:
                sent.retry += 1
    unsent = producer.flush(30)
    if unsent:
        raise KafkaException(f"outbox publish: {unsent} rows unacknowledged after 30 s")
    _sort_failures(producer, failed, sent)
    return sent


def _log_published(message: Any) -> None:
    log.info(
        "published",
        extra={
            "stage": "outbox",
            "doc_id": (message.key() or b"").decode(errors="replace"),
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
        },
    )


def _sort_failures(
    producer: Producer, failed: dict[int, tuple[str | None, str]], sent: Sent
) -> None:
    """A row that timed out because its topic does not exist (or is not ours) is dead; any
    other failure (Kafka away, a leader moving) is retried."""
    if not failed:
        return
    metadata = producer.list_topics(timeout=10).topics
    for row_id, (name, error) in failed.items():
        known = metadata.get(name) if name else None
        if known is None or known.error is not None:
            sent.dead[row_id] = f"{error}: topic {name} does not exist or is not writable"
        else:
            sent.retry += 1


async def relay_once(
    conn: AsyncConnection[Any], producer: Producer, topics: Sequence[str] | None = None
) -> int:
    """Publish one batch of these topics' rows (all topics when None); returns how many rows
    left the outbox (delivered, or dead-lettered with the reason)."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT id, topic, key, payload FROM outbox"
            " WHERE (%s::text[] IS NULL OR topic = ANY(%s::text[]))"
            " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (topics, topics, BATCH),
        )
        rows = [(r[0], r[1], r[2], bytes(r[3])) for r in await cur.fetchall()]
        if not rows:
            return 0
        sent = await asyncio.to_thread(_publish, producer, rows)
        if sent.dead:
            await _bury(conn, sent.dead)
        done = [*sent.delivered, *sent.dead]
        await conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (done,))
    if sent.retry:
        raise KafkaException(f"outbox publish: {sent.retry} rows failed; kept for a retry")
    return len(done)


async def _bury(conn: AsyncConnection[Any], dead: dict[int, str]) -> None:
    for row_id, error in dead.items():
        log.error(
            "outbox row %d refused by Kafka for good: %s (kept in outbox_dead)", row_id, error
        )
        await conn.execute(
            "INSERT INTO outbox_dead (id, topic, key, payload, created_at, error)"
            " SELECT id, topic, key, payload, created_at, %s FROM outbox WHERE id = %s"
            " ON CONFLICT (id) DO NOTHING",
            (error, row_id),
        )


def own_topics(settings: Settings) -> list[str]:
    """The topics this gateway writes through the outbox (and so relays)."""
    names = (topics.DOCS_REQUESTED, topics.DOCS_CONFIRMED, topics.DOCS_STATUS)
    return [topic(settings, name) for name in names]


async def run_relay(settings: Settings, stop: asyncio.Event) -> None:
    producer = Producer(producer_config(settings))
    while not stop.is_set():
        try:
            await _relay_until_stopped(settings, producer, stop)
        except Exception:  # Postgres or Kafka away: keep the rows, retry shortly
            log.exception("outbox relay failed; retrying in 1s")
            await asyncio.sleep(1)
    await asyncio.to_thread(producer.flush, 10)


async def _relay_until_stopped(settings: Settings, producer: Producer, stop: asyncio.Event) -> None:
    async with (
        await AsyncConnection.connect(settings.postgres.dsn) as conn,
        await AsyncConnection.connect(settings.postgres.dsn, autocommit=True) as listener,
    ):
        await listener.execute("LISTEN outbox")
        while not stop.is_set():
            while await relay_once(conn, producer, own_topics(settings)) == BATCH:
                pass
            async for _ in listener.notifies(timeout=POLL_S, stop_after=1):
                pass
