"""After a rescan's verdict: count it, log it for alerts, copy it to the same bytes.

A scanner publishes a rescan's verdict only when it differs from the one it replaces, so
every verdict seen here with ``rescan`` set is a change.  The job rescanned one document per
content; the tenant's other documents with those bytes, judged by the scanner within the
job's window, get the verdict by copy (``reused_from`` the rescanned one, marked as a rescan,
keeping its scan times), unless their own verdict is newer or already the same.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.records import RescanOf, ScanVerdict
from streams.rescan import jobs
from streams.rescan.metrics import RESCAN_VERDICT_CHANGES
from streams.rescan.plan import FLAGGED, copy_to
from streams.rescan.select import current_rows, same_content

log = logging.getLogger(__name__)
SAME_CONTENT_AT_MOST = 1000

Send = Callable[[bytes, bytes], Awaitable[None]]


def note_change(record: ScanVerdict, rescan: RescanOf) -> None:
    """The metric and the log line an alert catches (a document turned flagged)."""
    before, now = rescan.previous_verdict, record.verdict
    RESCAN_VERDICT_CHANGES.labels(record.scanner, before, now).inc()
    fields = {
        "stage": "rescan",
        "doc_id": record.doc_id,
        "tenant": record.tenant,
        "scanner": record.scanner,
        "verdict": now,
        "previous_verdict": before,
        "signatures_version": record.signatures_version,
        "rescan_reason": rescan.reason,
        "rescan_job": rescan.job_id,
        "reused_from": record.reused_from,
    }
    if now in FLAGGED and before not in FLAGGED:
        fields["alert"] = "rescan_flagged"
        log.warning("rescan: document turned %s (was %s)", now, before, extra=fields)
    else:
        log.info("rescan: verdict changed from %s to %s", before, now, extra=fields)


async def on_verdict(ctx: Any, record: ScanVerdict, send: Send) -> int:
    """Handle one ``scan_verdict``; returns how many copies were sent."""
    if record.rescan is None:
        return 0
    note_change(record, record.rescan)
    if record.reused_from is not None:
        return 0  # a copy already
    return await _copy(ctx, record, record.rescan, send)


async def _copy(ctx: Any, record: ScanVerdict, rescan: RescanOf, send: Send) -> int:
    rescanned = uuid.UUID(record.doc_id)
    async with (await ctx.pool()).connection() as conn:
        job = await jobs.get(conn, uuid.UUID(rescan.job_id))
        others = await same_content(conn, record.tenant, rescanned, SAME_CONTENT_AT_MOST)
    if not others:
        return 0
    window = timedelta(days=ctx.settings.rescan_window_days)
    since = job.since if job is not None else datetime.now(UTC) - window
    current = await asyncio.to_thread(
        current_rows, ctx.cassandra(), ctx.settings.cassandra.keyspace, record.scanner, others
    )
    sent = 0
    for doc_id in others:
        mine = current.get(doc_id)
        if mine is None or not copy_to(mine, record.verdict, record.end_at, since):
            continue
        copy = replace(
            record,
            doc_id=str(doc_id),
            reused_from=str(rescanned),
            rescan=replace(
                rescan,
                previous_verdict=mine.verdict,
                previous_signatures_version=mine.signatures_version,
            ),
        )
        await send(copy.kafka_key, copy.encode())
        sent += 1
    if sent:
        log.info(
            "rescan verdict copied to %d document(s) with the same bytes",
            sent,
            extra={"stage": "rescan", "doc_id": record.doc_id, "scanner": record.scanner},
        )
    return sent
