"""Operators' verbs: rebuild the projections from the topics, and look into dead letters.

``intellidox replay`` reads the fact topics from the start (they are kept forever) and writes
them through the same idempotent sinks the materializer uses: ``docs.requested`` first (the
rows), then the other document topics, then the verdicts.  Safe to run on a live system.

Dead letters (``intellidox dlq``) are in :mod:`ops.dlq`, a document's history
(``intellidox trace``) in :mod:`ops.trace`; both read the topics with :func:`read_all`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import psycopg
from confluent_kafka import Consumer, Message, TopicPartition

from ops.cql import CassandraClient
from ops.kafka import consumer_config, topic
from ops.kafka_read import Place, ends_of, read_to_end
from ops.settings import Settings
from schemas import topics
from schemas.events import decode_record
from schemas.record import Record
from streams.reread import partition_of
from streams.sinks import cassandra as cassandra_sink
from streams.sinks import postgres as postgres_sink

BATCH = 500
DOC_ORDER = (topics.DOCS_REQUESTED, topics.DOCS_CONFIRMED, topics.DOCS_METADATA, topics.DOCS_STATUS)


def read_all(
    settings: Settings,
    names: str | Sequence[str],
    timeout_s: float = 10.0,
    *,
    key: bytes | None = None,
    start: Mapping[Place, int] | None = None,
) -> Iterator[Message]:
    """Every message of one topic (or several, interleaved), from the start to the end it had
    when we began.

    ``key``: only the partition that key lands on (its other keys included: filter them);
    ``start``: begin a (topic, partition) at that offset instead (what was read before)."""
    names = [names] if isinstance(names, str) else list(names)
    consumer = Consumer(consumer_config(settings, f"intellidox-replay-{time.time_ns()}"))
    try:
        choose = None if key is None else functools.partial(_partition_of_key, key)
        ends = ends_of(consumer, names, timeout_s, start, choose)
        # Wait for the group coordinator (a look-up of committed offsets needs it): closing
        # in the middle of its SASL handshake makes librdkafka print an error on stderr.
        first = [TopicPartition(t, p) for t, p in list(ends.ends)[:1]]
        consumer.committed(first, timeout=timeout_s)
        yield from read_to_end(consumer, ends, timeout_s)
    finally:
        consumer.close()


def _partition_of_key(key: bytes, partitions: list[int]) -> list[int]:
    return [partition_of(key, len(partitions))] if partitions else []


def _batches(messages: Iterator[Message]) -> Iterator[list[Message]]:
    batch: list[Message] = []
    for message in messages:
        batch.append(message)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _decoded(batch: list[Message]) -> list[tuple[Record, int]]:
    """The batch's records with their offsets; a record a sink does not project makes the
    sink raise (replay stops loudly rather than rebuild a projection with a hole)."""
    items = []
    for message in batch:
        try:
            record = decode_record(message.value() or b"")
        except ValueError:
            continue  # poison: it is in (or belongs in) the dead-letter topic already
        items.append((record, message.offset() or 0))
    return items


async def _replay_documents(settings: Settings, schema: str) -> int:
    count = 0
    async with await psycopg.AsyncConnection.connect(
        settings.postgres.dsn, options=f"-c search_path={schema}"
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
            rows = cast(list[cassandra_sink.Item], _decoded(batch))  # the sink checks types
            count += cassandra_sink.write(client, keyspace, rows, settings.topic_prefix)
    finally:
        client.close()
    return count


def replay(
    settings: Settings, schema: str = "public", keyspace: str | None = None
) -> dict[str, int]:
    """Rebuild both projections from the topics; returns how many events each took."""
    documents = asyncio.run(_replay_documents(settings, schema))
    verdicts = _replay_verdicts(settings, keyspace or settings.cassandra.keyspace)
    return {"document_events": documents, "verdict_events": verdicts}


def add_replay_verb(verbs: Any) -> None:
    """``intellidox replay``."""
    replay_verb = verbs.add_parser("replay", help="rebuild the projections from the topics")
    replay_verb.add_argument("--schema", default="public", help="Postgres schema (public)")
    replay_verb.add_argument("--keyspace", default=None, help="Cassandra keyspace (settings)")
    replay_verb.set_defaults(handler=_cmd_replay)


def _cmd_replay(args: Any) -> int:
    from ops.settings import get_settings

    started = time.monotonic()
    counts = replay(get_settings(), args.schema, args.keyspace)
    print(
        f"replayed {counts['document_events']} document events and "
        f"{counts['verdict_events']} verdicts in {time.monotonic() - started:.1f}s"
    )
    return 0
