"""The outbox relay: publishes rows the gateway committed to Postgres, then deletes them.

At-least-once by construction: a row is deleted only after Kafka acknowledged it, in the same
transaction that locked it (``FOR UPDATE SKIP LOCKED`` lets many gateways relay side by side).
A crash between the ack and the commit re-publishes the row; every consumer is idempotent.
``NOTIFY outbox`` wakes the relay at once, and a slow poll catches anything missed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from confluent_kafka import KafkaException, Producer
from psycopg import AsyncConnection

from ops.kafka import producer_config
from ops.settings import Settings

log = logging.getLogger(__name__)
BATCH = 500
POLL_S = 1.0


def _publish(producer: Producer, rows: list[tuple[int, str, str, bytes]]) -> None:
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    for _id, topic, key, payload in rows:
        producer.produce(topic, value=payload, key=key.encode(), on_delivery=on_delivery)
    remaining = producer.flush(30)
    if remaining or errors:
        raise KafkaException(f"outbox publish failed: {remaining} unsent, errors {errors[:3]}")


async def relay_once(conn: AsyncConnection[Any], producer: Producer) -> int:
    """Publish one batch; returns how many rows went out."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT id, topic, key, payload FROM outbox ORDER BY id LIMIT %s"
            " FOR UPDATE SKIP LOCKED",
            (BATCH,),
        )
        rows = [(r[0], r[1], r[2], bytes(r[3])) for r in await cur.fetchall()]
        if not rows:
            return 0
        await asyncio.to_thread(_publish, producer, rows)
        await conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", ([r[0] for r in rows],))
    return len(rows)


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
        await AsyncConnection.connect(settings.postgres_dsn) as conn,
        await AsyncConnection.connect(settings.postgres_dsn, autocommit=True) as listener,
    ):
        await listener.execute("LISTEN outbox")
        while not stop.is_set():
            while await relay_once(conn, producer) == BATCH:
                pass
            async for _ in listener.notifies(timeout=POLL_S, stop_after=1):
                pass
