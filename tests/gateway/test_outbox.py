"""The outbox keeps Postgres and Kafka from diverging: nothing is lost while Kafka is away."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaException, Producer

from gateway.outbox import relay_once
from ops.kafka import consumer_config, producer_config
from ops.settings import Settings

pytestmark = pytest.mark.integration


async def _outbox_rows(conninfo: str, schema: str) -> int:
    async with await psycopg.AsyncConnection.connect(
        conninfo, options=f"-c search_path={schema}"
    ) as conn:
        cur = await conn.execute("SELECT count(*) FROM outbox")
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def test_rows_wait_for_kafka_then_go_out_once(
    settings: Settings, pg_conninfo: str, pg_schema: tuple[Any, str], kafka_topics: str
) -> None:
    _, schema = pg_schema
    topic = f"{kafka_topics}docs.requested"
    key = str(uuid.uuid4())
    async with await psycopg.AsyncConnection.connect(
        pg_conninfo, options=f"-c search_path={schema}"
    ) as conn:
        await conn.execute(
            "INSERT INTO outbox (topic, key, payload) VALUES (%s, %s, %s)", (topic, key, b"event")
        )
        await conn.commit()
        away = Producer({"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 1000})
        with pytest.raises(KafkaException):
            await relay_once(conn, away)
        assert await _outbox_rows(pg_conninfo, schema) == 1  # kept for the next try
        assert await relay_once(conn, Producer(producer_config(settings))) == 1
        assert await relay_once(conn, Producer(producer_config(settings))) == 0
    assert await _outbox_rows(pg_conninfo, schema) == 0
    consumer = Consumer(consumer_config(settings, f"outbox-{uuid.uuid4().hex}"))
    consumer.subscribe([topic])
    try:
        message = None
        for _ in range(20):
            message = consumer.poll(1)
            if message is not None and not message.error():
                break
        assert message is not None and message.key() == key.encode() and message.value() == b"event"
    finally:
        consumer.close()


async def test_a_row_kafka_refuses_for_good_is_set_aside_and_the_rest_go_out(
    settings: Settings, pg_conninfo: str, pg_schema: tuple[Any, str], kafka_topics: str
) -> None:
    # A row for a topic that is gone (a deleted stack's, say) used to block every row behind
    # it forever: the relay retried the whole batch.
    _, schema = pg_schema
    good = f"{kafka_topics}docs.requested"
    gone = f"gone{uuid.uuid4().hex[:8]}.docs.requested"
    async with await psycopg.AsyncConnection.connect(
        pg_conninfo, options=f"-c search_path={schema}"
    ) as conn:
        for name in (gone, good):
            await conn.execute(
                "INSERT INTO outbox (topic, key, payload) VALUES (%s, 'k', %s)", (name, b"e")
            )
        await conn.commit()
        producer = Producer(producer_config(settings, **{"message.timeout.ms": 10000}))
        assert await relay_once(conn, producer) == 2
        cur = await conn.execute("SELECT topic, error FROM outbox_dead")
        dead = await cur.fetchall()
    assert [row[0] for row in dead] == [gone] and dead[0][1]
    assert await _outbox_rows(pg_conninfo, schema) == 0


async def test_a_relay_takes_only_its_own_topics(
    settings: Settings, pg_conninfo: str, pg_schema: tuple[Any, str], kafka_topics: str
) -> None:
    _, schema = pg_schema
    mine, other = f"{kafka_topics}docs.requested", "another-environment.docs.requested"
    async with await psycopg.AsyncConnection.connect(
        pg_conninfo, options=f"-c search_path={schema}"
    ) as conn:
        for name in (other, mine):
            await conn.execute(
                "INSERT INTO outbox (topic, key, payload) VALUES (%s, 'k', %s)", (name, b"e")
            )
        await conn.commit()
        assert await relay_once(conn, Producer(producer_config(settings)), [mine]) == 1
        cur = await conn.execute("SELECT topic FROM outbox")
        assert [row[0] for row in await cur.fetchall()] == [other]
