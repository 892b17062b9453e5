"""Operators' verbs: rebuild the projections from the topics, and look into dead letters.

``intellidox replay`` reads the fact topics from the start (they are kept forever) and writes
them through the same idempotent sinks the materializer uses: ``docs.requested`` first (the
rows), then the other document topics, then the verdicts.  Safe to run on a live system.

``intellidox dlq list`` shows what went to the dead-letter topics and why; ``dlq replay``
puts those events back on their source topic once the cause is fixed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, cast

import psycopg
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from ops.cql import CassandraClient
from ops.kafka import consumer_config, producer_config, topic
from ops.settings import Settings
from schemas import topics
from streams.events import decode_event
from streams.sinks import cassandra as cassandra_sink
from streams.sinks import postgres as postgres_sink

BATCH = 500
DOC_ORDER = (topics.DOCS_REQUESTED, topics.DOCS_CONFIRMED, topics.DOCS_METADATA, topics.DOCS_STATUS)


def read_all(settings: Settings, name: str, timeout_s: float = 10.0) -> Iterator[Message]:
    """Every message of a topic, from the start to the end it had when we began."""
    consumer = Consumer(consumer_config(settings, f"intellidox-replay-{time.time_ns()}"))
    try:
        meta = consumer.list_topics(name, timeout=timeout_s).topics[name]
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout_s)[1]
            for p in meta.partitions
        }
        consumer.assign([TopicPartition(name, p, 0) for p in meta.partitions])
        done = {p for p, end in ends.items() if end == 0}
        while len(done) < len(ends):
            message = consumer.poll(timeout_s)
            if message is None:
                raise TimeoutError(f"reading {name} stalled")
            if message.error():
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            if offset < ends[partition]:
                yield message
            if offset + 1 >= ends[partition]:
                done.add(partition)
    finally:
        consumer.close()


def _batches(messages: Iterator[Message]) -> Iterator[list[Message]]:
    batch: list[Message] = []
    for message in messages:
        batch.append(message)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _decoded(batch: list[Message]) -> list[tuple[str, dict[str, Any], int]]:
    items = []
    for message in batch:
        try:
            record = decode_event(message.value() or b"")
        except ValueError:
            continue  # poison: it is in (or belongs in) the dead-letter topic already
        items.append((record["_schema"], record, message.offset() or 0))
    return items


async def _replay_documents(settings: Settings, schema: str) -> int:
    count = 0
    async with await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, options=f"-c search_path={schema}"
    ) as conn:
        for name in DOC_ORDER:
            for batch in _batches(read_all(settings, topic(settings, name))):
                count += len(batch)
                await postgres_sink.write(conn, _decoded(batch))
    return count


def _replay_verdicts(settings: Settings, keyspace: str) -> int:
    client = CassandraClient.connect(settings)
    count = 0
    try:
        for batch in _batches(read_all(settings, topic(settings, topics.SCAN_VERDICTS))):
            rows = [(record, offset) for _, record, offset in _decoded(batch)]
            count += cassandra_sink.write(client, keyspace, rows)
    finally:
        client.close()
    return count


def replay(
    settings: Settings, schema: str = "public", keyspace: str | None = None
) -> dict[str, int]:
    """Rebuild both projections from the topics; returns how many events each took."""
    documents = asyncio.run(_replay_documents(settings, schema))
    verdicts = _replay_verdicts(settings, keyspace or settings.cassandra_keyspace)
    return {"document_events": documents, "verdict_events": verdicts}


def dead_letters(settings: Settings) -> Iterator[tuple[str, Message]]:
    for name in topics.FACT_TOPICS:
        for message in read_all(settings, topic(settings, topics.dlq(name))):
            yield name, message


def headers_of(message: Message) -> dict[str, str]:
    found: dict[str, str] = {}
    pairs = cast(list[tuple[str, bytes | None]], message.headers() or [])
    for key, value in pairs:
        found[key] = (
            value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")
        )
    return found


def replay_dead_letters(settings: Settings, source: str) -> int:
    """Put every dead letter of ``source`` back on it (the consumers are idempotent)."""
    producer = Producer(producer_config(settings))
    count = 0
    for message in read_all(settings, topic(settings, topics.dlq(source))):
        headers = [*(message.headers() or []), ("x-replayed-at", str(time.time()).encode())]
        producer.produce(
            topic(settings, source), key=message.key(), value=message.value(), headers=headers
        )
        count += 1
    producer.flush(30)
    return count


def add_ops_verbs(verbs: Any) -> None:
    """``intellidox replay`` and ``intellidox dlq list|replay TOPIC``."""
    replay_verb = verbs.add_parser("replay", help="rebuild the projections from the topics")
    replay_verb.add_argument("--schema", default="public", help="Postgres schema (public)")
    replay_verb.add_argument("--keyspace", default=None, help="Cassandra keyspace (settings)")
    replay_verb.set_defaults(handler=_cmd_replay)
    dlq_verb = verbs.add_parser("dlq", help="list dead letters, or put them back on their topic")
    dlq_verb.add_argument("action", choices=["list", "replay"])
    dlq_verb.add_argument(
        "source",
        nargs="?",
        choices=topics.FACT_TOPICS,
        help="with replay: the topic whose dead letters go back",
    )
    dlq_verb.set_defaults(handler=_cmd_dlq)


def _cmd_replay(args: Any) -> int:
    from ops.settings import get_settings

    started = time.monotonic()
    counts = replay(get_settings(), args.schema, args.keyspace)
    print(
        f"replayed {counts['document_events']} document events and "
        f"{counts['verdict_events']} verdicts in {time.monotonic() - started:.1f}s"
    )
    return 0


def _cmd_dlq(args: Any) -> int:
    from ops.settings import get_settings

    settings = get_settings()
    if args.action == "replay":
        if args.source is None:
            raise SystemExit("dlq replay needs the source topic, e.g. docs.confirmed")
        print(f"put {replay_dead_letters(settings, args.source)} events back on {args.source}")
        return 0
    for source, message in dead_letters(settings):
        headers = headers_of(message)
        key = (message.key() or b"").decode(errors="replace")
        print(f"{source}\t{key}\t{headers.get('x-error', '?')}")
    return 0
