"""Completion tracker: a Faust table of each document's expected vs received verdicts.

Emits the status transitions to ``docs.status`` and, for a scanner whose group has had no live
member for longer than its deadline while the request waited (see :mod:`streams.progress`), a
``timeout`` verdict, so no document stays in progress forever because an engine is gone.  The
table's changelog makes the state survive a worker crash; its keys are the raw document ids, so
a key's changelog partition is the same as its source partition (``use_partitioner``).

Verdicts come in the materializer's batches, once written (:func:`track_verdicts`): a
document's twenty verdicts are mostly one save, one changelog message, instead of twenty.  A
``done`` thus comes after its verdicts' write to Cassandra (one Cassandra refused is
dead-lettered, and counts).  The other events have agents of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import faust

from ops.backoff import GaveUp, retrying
from ops.kafka import topic
from ops.logs import log_context
from schemas import topics
from schemas.documents import DocsConfirmed, DocsMetadata, DocsStatus
from schemas.record import Record
from schemas.records import ScanVerdict
from schemas.scans import ScanRequest
from streams import materializer, metrics, progress, registry, reread
from streams.app import app, settings, source
from streams.dlq import handle_or_dead_letter, handler_rules
from streams.orchestrator import verdicts_topic

log = logging.getLogger(__name__)
FORGET_AFTER_MS = 10 * 60 * 1000
TICK_S = 1.0
STALLED_AFTER_MS = 30_000  # past twice the deadline: a live scanner's verdict is this late
REREAD_SLACK_MS = 5_000  # read again from a little before the request (hosts' clocks differ)

table = app.Table(
    "progress",
    default=None,
    partitions=settings.kafka.partitions,
    use_partitioner=True,
    schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
)
status_topic = app.topic(topic(settings, topics.DOCS_STATUS), key_type=bytes, value_type=bytes)


class DocumentLocks:
    """One asyncio lock per document, kept only while someone holds or waits for it.

    The agents of one document (its request, its verdicts) and the deadline timer run side
    by side: each loads the progress, sends its status events, then saves.  A send may
    yield to another agent, whose save the first one's would then overwrite (a verdict
    lost: the document waits until the re-read finds it)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def busy(self, doc_id: str) -> bool:
        return doc_id in self._locks

    @contextlib.asynccontextmanager
    async def hold(self, doc_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(doc_id) or (asyncio.Lock(), 0)
        self._locks[doc_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[doc_id]
            if users == 1:
                del self._locks[doc_id]
            else:
                self._locks[doc_id] = (lock, users - 1)


locks = DocumentLocks()
clock = progress.DeadlineClock(max_step_ms=int(2 * TICK_S * 1000))
rereads = reread.Rereads()
reread_tries: dict[str, int] = {}  # document -> re-reads its wait caused (this process)
REREAD_TRIES = 3

R = TypeVar("R", DocsConfirmed, DocsMetadata, ScanRequest, ScanVerdict)  # what it tracks
Step = Callable[[progress.Progress | None, R, int], tuple[progress.Progress, list[DocsStatus]]]


def load(doc_id: str) -> progress.Progress | None:
    """The document's progress, a copy of what the table holds (changed only by saving)."""
    return _parsed(table.get(doc_id))


def _parsed(raw: dict[str, Any] | None) -> progress.Progress | None:
    return None if raw is None else progress.Progress.from_json(raw)


async def apply(step: Step[R], record: R) -> None:
    await apply_all(step, [record])


async def apply_all(step: Step[R], records: Sequence[R]) -> None:
    """Fold one document's ``records``, in order, into its progress, and save it once."""
    doc_id = records[0].doc_id
    async with locks.hold(doc_id):
        # Saved only after the status events are out: a failed send is retried from the old
        # state and emits again, instead of finding the rank already reached.
        raw = table.get(doc_id)  # kept: an unchanged state is not saved again
        before = _parsed(raw)
        late_before = len(before.late) if before else 0
        state, emitted, now = before, [], _now_ms()
        for record in records:
            state, out = step(state, record, now)
            emitted += out
        assert state is not None  # records is never empty
        for status in emitted:
            await status_topic.send(key=status.kafka_key, value=status.encode())
            metrics.STATUSES.labels(status.status).inc()
            log.info("status %s", status.status, extra={"reason": status.reason})
        metrics.VERDICTS_LATE.inc(len(state.late) - late_before)
        after = state.to_json()
        if after != raw:  # else nothing changed (a redelivery): no changelog message
            table[doc_id] = after


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _track(stream: Any, record_type: type[R], step: Step[R]) -> None:
    async for event in stream.events():
        await _track_event(event, record_type, step)


async def _track_event(event: Any, record_type: type[R], step: Step[R]) -> None:
    await handle_or_dead_letter(
        app, event, record_type, lambda record: apply(step, record), stage="tracker"
    )


@app.agent(source(topics.DOCS_CONFIRMED))
async def track_confirmed(stream: Any) -> None:
    await _track(stream, DocsConfirmed, progress.on_confirmed)


@app.agent(source(topics.DOCS_METADATA))
async def track_metadata(stream: Any) -> None:
    await _track(stream, DocsMetadata, progress.on_metadata)


@app.agent(source(topics.SCAN_REQUESTS))
async def track_requests(stream: Any) -> None:
    await _track(stream, ScanRequest, progress.on_scan_request)


async def track_verdicts(batch: Sequence[tuple[Record, Any]]) -> None:
    """A batch of verdicts (the materializer's, once written), folded per document: one save
    (one changelog message) and one lock per document, not one per verdict.  A document
    whose fold keeps failing is tracked event by event, so only a bad event is dead-lettered;
    an outage is retried until it passes (the batch is acked when this returns)."""
    by_doc: dict[str, list[tuple[ScanVerdict, Any]]] = {}
    for record, event in batch:
        if isinstance(record, ScanVerdict):  # anything else was dead-lettered by the sink
            by_doc.setdefault(record.doc_id, []).append((record, event))
    for doc_id, items in by_doc.items():
        records = [record for record, _ in items]
        with log_context(stage="tracker", doc_id=doc_id, tenant=records[0].tenant):
            fold = partial(apply_all, progress.on_verdict, records)
            try:
                await retrying(fold, handler_rules(), _retried)
            except GaveUp:  # one by one (decoding is cached): only a bad event is dead-lettered
                for _, event in items:
                    await _track_event(event, ScanVerdict, progress.on_verdict)


def _retried(tries: int, pause: float, exc: BaseException) -> None:
    log.warning("could not track a batch's verdicts (try %d); retrying", tries, exc_info=True)


materializer.follow_verdicts(track_verdicts)


def timeout_verdict(
    doc_id: str, state: progress.Progress, scanner: str, now_ms: int
) -> ScanVerdict:
    deadline_s = (state.expected or {}).get(scanner, 0) / 1000
    return ScanVerdict.timeout(
        doc_id,
        state.tenant,
        scanner,
        f"no live {scanner} scanner for {deadline_s:g}s while the request waited",
        start_at=datetime.fromtimestamp((state.requested_ms or now_ms) / 1000, tz=UTC),
        end_at=datetime.fromtimestamp(now_ms / 1000, tz=UTC),
    )


@app.timer(interval=TICK_S)
async def enforce_deadlines() -> None:
    await check_deadlines()


async def check_deadlines() -> None:
    """Charge this tick's "no live member" time to the documents waiting on a gone scanner
    group, and answer ``timeout`` for those past their deadline."""
    now = _now_ms()
    view = await registry.liveness(now)
    step_ms = clock.step(now, view.fresh)
    stalled: dict[int, list[tuple[str, int]]] = {}  # verdict partition -> (doc, since)
    for doc_id in list(table.keys()):
        raw = table.get(doc_id)  # now, not when the loop began: a _time_out below yields
        if raw is None:
            continue
        finished_ms = raw.get("finished_ms")
        if finished_ms:  # kept only to be forgotten: not parsed (they are most of the table)
            if finished_ms < now - FORGET_AFTER_MS:
                del table[doc_id]
            continue
        state = progress.Progress.from_json(raw)
        if progress.forgettable(state, now, FORGET_AFTER_MS):
            del table[doc_id]
            continue
        if locks.busy(doc_id):
            continue  # an agent is changing it: charged from the next tick on
        if progress.charge(state, view.alive, step_ms):
            async with locks.hold(doc_id):  # free: taken without yielding since the read
                await _time_out(doc_id, state, progress.overdue(state), now)
                table[doc_id] = state.to_json()
        elif view.fresh and progress.stalled(state, view.alive, now, STALLED_AFTER_MS):
            _note_stalled(stalled, doc_id, state)
    await _reread_stalled(stalled, now)


def _note_stalled(
    stalled: dict[int, list[tuple[str, int]]], doc_id: str, state: progress.Progress
) -> None:
    if reread_tries.get(doc_id, 0) >= REREAD_TRIES:
        return  # read again enough: the scanner has it, or is far behind
    partition = reread.partition_of(doc_id.encode(), settings.kafka.partitions)
    since = (state.requested_ms or 0) - REREAD_SLACK_MS
    stalled.setdefault(partition, []).append((doc_id, since))


async def _reread_stalled(stalled: dict[int, list[tuple[str, int]]], now: int) -> None:
    wanted = {p: min(since for _, since in docs) for p, docs in stalled.items()}
    name = topic(settings, topics.SCAN_VERDICTS)
    for partition, since in rereads.due(wanted, now).items():
        for doc_id, _ in stalled[partition]:
            reread_tries[doc_id] = reread_tries.get(doc_id, 0) + 1
        try:
            if await reread.reread(app, settings, name, partition, since):
                metrics.VERDICT_REREADS.inc()
        except Exception:  # Kafka away: the next due tick tries again; the timer goes on
            log.warning("could not read %s[%d] again", name, partition, exc_info=True)
    if len(reread_tries) > 10 * REREAD_TRIES * settings.kafka.partitions:
        reread_tries.clear()  # only ever a few: the documents re-read in the last minutes


async def _time_out(doc_id: str, state: progress.Progress, late: list[str], now: int) -> None:
    for scanner in late:
        verdict = timeout_verdict(doc_id, state, scanner, now)
        await verdicts_topic.send(key=verdict.kafka_key, value=verdict.encode())
        metrics.VERDICTS_TIMED_OUT.labels(scanner).inc()
        log.warning(
            "timeout verdict: %s",
            verdict.result,
            extra={
                "stage": "tracker",
                "doc_id": doc_id,
                "tenant": state.tenant,
                "scanner": scanner,
            },
        )
    state.timed_out = state.timed_out + late
