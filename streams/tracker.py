"""Completion tracker: a Faust table of each document's expected vs received verdicts.

Emits the status transitions to ``docs.status`` and, for any scanner past its deadline, a
``timeout`` verdict, so no document stays in progress forever.  The table's changelog makes
the state survive a worker crash; its keys are the raw document ids, so a key's changelog
partition is the same as its source partition (``use_partitioner``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust

from ops.kafka import topic
from schemas import topics
from streams import progress
from streams.app import app, settings, source
from streams.context import context
from streams.dlq import handle_or_dead_letter
from streams.events import encode_event
from streams.orchestrator import verdicts_topic

FORGET_AFTER_MS = 10 * 60 * 1000

table = app.Table(
    "progress",
    default=None,
    partitions=settings.kafka_partitions,
    use_partitioner=True,
    schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
)
status_topic = app.topic(topic(settings, topics.DOCS_STATUS), key_type=bytes, value_type=bytes)

Step = Callable[
    [progress.State | None, dict[str, Any], int], tuple[progress.State, list[dict[str, Any]]]
]


async def apply(step: Step, record: dict[str, Any]) -> None:
    doc_id = record["doc_id"]
    # A copy, saved only after the status events are out: a failed send is retried from the
    # old state and emits again, instead of finding the rank already reached.
    state, emitted = step(copy.deepcopy(table.get(doc_id)), record, _now_ms())
    for status in emitted:
        await status_topic.send(key=doc_id.encode(), value=encode_event("docs_status", status))
        context().metrics.inc(f"status_{status['status']}")
    table[doc_id] = state


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _track(stream: Any, step: Step) -> None:
    async for event in stream.events():
        await handle_or_dead_letter(app, event, lambda record: apply(step, record))


@app.agent(source(topics.DOCS_CONFIRMED))
async def track_confirmed(stream: Any) -> None:
    await _track(stream, progress.on_confirmed)


@app.agent(source(topics.DOCS_METADATA))
async def track_metadata(stream: Any) -> None:
    await _track(stream, progress.on_metadata)


@app.agent(source(topics.SCAN_REQUESTS))
async def track_requests(stream: Any) -> None:
    await _track(stream, progress.on_scan_request)


@app.agent(source(topics.SCAN_VERDICTS))
async def track_verdicts(stream: Any) -> None:
    await _track(stream, progress.on_verdict)


def timeout_verdict(doc_id: str, tenant: str, scanner: str, deadline_ms: int) -> dict[str, Any]:
    at = datetime.fromtimestamp(deadline_ms / 1000, tz=UTC)
    return {
        "doc_id": doc_id,
        "tenant": tenant,
        "scanner": scanner,
        "vendor": "",
        "verdict": "timeout",
        "result": "no verdict before the deadline",
        "engine_version": "",
        "signatures_version": "",
        "start_at": at,
        "end_at": at,
        "reused_from": None,
    }


@app.timer(interval=1.0)
async def enforce_deadlines() -> None:
    now = _now_ms()
    for doc_id, state in list(table.items()):
        if state is None:
            continue
        if progress.forgettable(state, now, FORGET_AFTER_MS):
            del table[doc_id]
            continue
        late = progress.overdue(state, now)
        for scanner in late:
            verdict = timeout_verdict(doc_id, state["tenant"], scanner, state["expected"][scanner])
            await verdicts_topic.send(
                key=doc_id.encode(), value=encode_event("scan_verdict", verdict)
            )
            context().metrics.inc("verdicts_timeout")
        if late:
            state["timed_out"] = state["timed_out"] + late
            table[doc_id] = state
