"""Materializer: projects docs.* into Postgres and scan.verdicts into Cassandra, in batches.

Offsets are committed only after a batch is written (at-least-once); both sinks are
idempotent, so a redelivered or replayed batch changes nothing.  An event that cannot be
decoded goes to its topic's dead-letter topic instead of blocking the partition.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ops.kafka import topic
from schemas import topics
from streams.app import app, settings
from streams.context import context
from streams.dlq import send_to_dlq
from streams.events import decode_event
from streams.sinks import cassandra as cassandra_sink
from streams.sinks import postgres as postgres_sink

log = logging.getLogger(__name__)
BATCH = 500
WITHIN_S = 0.05

_doc_topics = app.topic(
    *(
        topic(settings, name)
        for name in (
            topics.DOCS_REQUESTED,
            topics.DOCS_CONFIRMED,
            topics.DOCS_METADATA,
            topics.DOCS_STATUS,
        )
    ),
    key_type=bytes,
    value_type=bytes,
)
_verdict_topic = app.topic(topic(settings, topics.SCAN_VERDICTS), key_type=bytes, value_type=bytes)


async def _decode_batch(events: list[Any]) -> list[tuple[str, dict[str, Any], int]]:
    items = []
    for event in events:
        try:
            record = decode_event(event.value)
        except ValueError as exc:
            await send_to_dlq(app, event, exc)
            continue
        items.append((record["_schema"], record, event.message.offset))
    return items


@app.agent(_doc_topics)
async def materialize_documents(stream: Any) -> None:
    async for events in stream.take_events(BATCH, within=WITHIN_S):
        items = await _decode_batch(events)
        ctx = context()
        async with (await ctx.pool()).connection() as conn:
            await postgres_sink.write(conn, items)
        ctx.metrics.inc("documents_materialized", len(items))


@app.agent(_verdict_topic)
async def materialize_verdicts(stream: Any) -> None:
    async for events in stream.take_events(BATCH, within=WITHIN_S):
        items = [(record, offset) for _, record, offset in await _decode_batch(events)]
        ctx = context()
        await asyncio.to_thread(
            cassandra_sink.write, ctx.cassandra(), ctx.settings.cassandra_keyspace, items
        )
        ctx.metrics.inc("verdicts_materialized", len(items))
