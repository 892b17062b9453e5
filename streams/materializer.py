"""Materializer: projects docs.* into Postgres and scan.verdicts into Cassandra, in batches.

The worker's one agent on scan.verdicts: the stages that follow verdicts (the tracker, the
rescan stage) get each batch from it once it is written (:func:`follow_verdicts`).

Faust acks a batch once the agent has looked at it, so a batch is never given up: a store
outage is retried until it passes, and a record that cannot be written goes to the dead-letter
topic with the reason (so does an event that cannot be decoded).  Both sinks are idempotent,
so redelivery and replay change nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from ops.backoff import Backoff, retrying
from ops.kafka import topic
from ops.logs import log_context
from schemas import topics
from schemas.events import decode_record
from schemas.record import Record
from streams import metrics
from streams.app import app, settings
from streams.context import context
from streams.dlq import STORE_OUTAGES, send_to_dlq
from streams.sinks import cassandra as cassandra_sink
from streams.sinks import postgres as postgres_sink

log = logging.getLogger(__name__)
_DETAILS = ("scanner", "status", "verdict")  # shown on a materialized record's log line
BATCH = 500
WRITE_TIMEOUT_S = 60.0
WITHIN_S = 0.05
OUTAGE = Backoff(attempts=None, base_s=0.2, cap_s=5.0)  # a store away: the batch waits for it

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


Item = tuple[Record, int]  # (record, offset); a sink refuses a type it does not project


async def _decode_batch(events: list[Any]) -> list[tuple[Item, Any]]:
    items = []
    for event in events:
        try:
            record = decode_record(event.value)
        except ValueError as exc:
            await send_to_dlq(app, event, exc)
            continue
        items.append(((record, event.message.offset), event))
    return items


async def persist(
    decoded: list[tuple[Item, Any]], write: Callable[[list[Item]], Awaitable[Any]]
) -> list[tuple[Item, Any]]:
    """Write a batch; never give up on a store outage (Faust acks the batch whatever we do),
    and isolate a bad record: one by one, the failing one to the dead-letter topic.  Returns
    what was written."""
    items = [item for item, _ in decoded]
    if await _retry_outages(lambda: write(items)):
        return decoded
    written = []
    for item, event in decoded:
        try:
            await _retry_outages(functools.partial(write, [item]), raise_other=True)
            written.append((item, event))
        except Exception as exc:
            await send_to_dlq(app, event, exc)
    return written


async def _retry_outages(attempt: Callable[[], Awaitable[Any]], raise_other: bool = False) -> bool:
    """True when ``attempt`` succeeded; outages are retried with backoff until it does."""

    def retried(tries: int, pause: float, exc: BaseException) -> None:
        log.warning("store unavailable; retrying the batch in %.1fs", pause, exc_info=True)

    try:
        await retrying(attempt, [(STORE_OUTAGES, OUTAGE)], retried)
        return True
    except Exception:
        if raise_other:
            raise
        log.exception("batch failed; writing its records one by one")
        return False


async def _materialize(
    stream: Any,
    write: Callable[[list[Item]], Awaitable[Any]],
    projection: str,
    followers: list[Follower] | None = None,
) -> None:
    async for events in stream.take_events(BATCH, within=WITHIN_S):
        with log_context(stage="materializer"):
            decoded = await _decode_batch(events)
            written = await persist(decoded, write)
            metrics.MATERIALIZED.labels(projection).inc(len(decoded))
            if log.isEnabledFor(logging.DEBUG):  # one line per record: costly at full rate
                for item, event in written:
                    _log_written(item, event, projection)
        if followers:
            await _follow([(record, event) for (record, _), event in decoded], followers)


async def _follow(batch: list[tuple[Record, Any]], followers: list[Follower]) -> None:
    for follower in followers:
        try:
            await follower(batch)
        except Exception:  # a bug: the agent must live on (each follower handles its failures)
            name = getattr(follower, "__qualname__", repr(follower))
            log.exception("%s failed on a batch of %d", name, len(batch))


def _log_written(item: Item, event: Any, projection: str) -> None:
    record, offset = item
    message = event.message
    fields = {"doc_id": getattr(record, "doc_id", None), "tenant": getattr(record, "tenant", None)}
    fields.update((k, getattr(record, k)) for k in _DETAILS if getattr(record, k, None) is not None)
    fields.update(topic=message.topic, partition=message.partition, offset=offset)
    log.debug("materialized %s into %s", record.SCHEMA, projection, extra=fields)


@app.agent(_doc_topics)
async def materialize_documents(stream: Any) -> None:
    await _materialize(stream, _write_documents, "documents")


async def _write_documents(items: list[Item]) -> None:
    async with (await context().pool()).connection() as conn:
        await postgres_sink.write(conn, items)


# What else reads each batch of verdicts once it is written (the tracker, the rescan stage).
# One agent on scan.verdicts instead of one each: Faust hands every event to every agent on
# its topic, one task step each, which cost more than what the tracker did with a verdict.
Follower = Callable[[list[tuple[Record, Any]]], Awaitable[None]]
_verdict_followers: list[Follower] = []


def follow_verdicts(follower: Follower) -> None:
    """Call ``follower`` with each batch of decoded verdicts (and their events), after the
    batch is written.  It must handle its own failures: the batch is acked when it returns."""
    _verdict_followers.append(follower)


@app.agent(_verdict_topic)
async def materialize_verdicts(stream: Any) -> None:
    await _materialize(stream, _write_verdicts, "verdicts", _verdict_followers)


async def _write_verdicts(items: list[Item]) -> None:
    ctx = context()
    rows = cast(list[cassandra_sink.Item], items)  # the sink checks each is a verdict
    # A write caught by Cassandra going away can wait on a connection that never answers;
    # bounded, it becomes an outage to retry instead of an agent stuck forever (the worker's
    # only agent on scan.verdicts: the tracker and the rescan stage would wait with it).
    keyspace, scope = ctx.settings.cassandra.keyspace, ctx.settings.topic_prefix
    write = asyncio.to_thread(cassandra_sink.write, ctx.cassandra(), keyspace, rows, scope)
    await asyncio.wait_for(write, WRITE_TIMEOUT_S)
