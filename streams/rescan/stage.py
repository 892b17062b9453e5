"""The retro-scan's Faust wiring: watch signatures, run jobs, follow rescan verdicts.

Every worker runs both timers.  The watcher records each (scanner, signatures version) it
sees in the live registry; Postgres lets only the first insert of a version open a job, so a
change triggers once however many workers and heartbeats saw it.  The job taker claims an
open job nobody holds and runs it in the background (at most ``JOBS_AT_ONCE`` per worker).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.kafka import topic
from schemas import topics
from schemas.record import Record
from schemas.records import ScanVerdict
from streams import materializer, registry
from streams.app import app, settings
from streams.context import context
from streams.rescan import execute, follow, jobs
from streams.rescan.metrics import RESCAN_JOBS, RESCAN_REQUESTS
from streams.rescan.plan import unseen

log = logging.getLogger(__name__)
JOBS_AT_ONCE = 4
FOLLOW_TIMEOUT_S = 60.0
OWNER = f"{socket.gethostname()}:{os.getpid()}"

rescans_topic = app.topic(topic(settings, topics.SCAN_RESCANS), key_type=bytes, value_type=bytes)
verdicts_topic = app.topic(topic(settings, topics.SCAN_VERDICTS), key_type=bytes, value_type=bytes)
_known: set[tuple[str, str]] = set()  # (scanner, version) this worker has recorded
_running: dict[uuid.UUID, Any] = {}  # job id -> its future


def scope() -> str:
    """The deployment: stacks sharing the databases keep their jobs and verdicts apart."""
    return settings.topic_prefix


def _rescan_sender(scanner: str) -> execute.Send:
    sent = RESCAN_REQUESTS.labels(scanner)

    async def send(key: bytes, value: bytes) -> None:
        await (await rescans_topic.send(key=key, value=value))  # once Kafka has it
        sent.inc()

    return send


async def _send_verdict(key: bytes, value: bytes) -> None:
    await (await verdicts_topic.send(key=key, value=value))


@app.timer(interval=settings.rescan_check_s)
async def watch_signatures() -> None:
    """Record the signatures versions live scanners announce; a new one opens a job."""
    if not registry.loaded.is_set():
        return
    current = {beat.name: beat.signatures_version for beat in registry.alive()}
    fresh = unseen(current, _known)
    if not fresh:
        return
    ctx = context()
    since = datetime.now(UTC) - timedelta(days=ctx.settings.rescan_window_days)
    try:
        async with (await ctx.pool()).connection() as conn:
            for name, version in fresh:
                job_id = await jobs.note_version(conn, scope(), name, version, since)
                _known.add((name, version))
                if job_id is not None:
                    RESCAN_JOBS.labels(name, "signatures").inc()
                    log.info(
                        "signatures of %s changed to %s: rescan job %s opened",
                        name,
                        version,
                        job_id,
                        extra={"stage": "rescan", "scanner": name},
                    )
    except Exception:  # Postgres away: the next tick tries again
        log.warning("could not record scanner signatures", exc_info=True)


@app.timer(interval=settings.rescan_check_s)
async def take_jobs() -> None:
    """Claim an open job nobody holds and run it in the background."""
    for job_id in [j for j, future in _running.items() if future.done()]:
        del _running[job_id]
    if len(_running) >= JOBS_AT_ONCE:
        return
    ctx = context()
    try:
        async with (await ctx.pool()).connection() as conn:
            job = await jobs.claim(conn, scope(), OWNER, execute.lease_s(ctx.settings))
    except Exception:
        log.warning("could not look for rescan jobs", exc_info=True)
        return
    if job is None or job.id in _running:  # ours already: it was slow to renew its lease
        return
    log.info(
        "running rescan job %s (%s, since %s)",
        job.id,
        job.reason,
        job.since.isoformat(),
        extra={"stage": "rescan", "scanner": job.scanner},
    )
    sender = _rescan_sender(job.scanner)
    state = execute.JobRun(
        job, OWNER, ctx.settings, ctx.s3, ctx.cassandra(), await ctx.pool(), sender
    )
    _running[job.id] = app.add_future(_run(state))


async def _run(state: execute.JobRun) -> None:
    started = time.monotonic()
    try:
        await execute.run(state)
    except Exception:  # its lease runs out and a worker (maybe this one) takes it again
        log.exception("rescan job %s failed after %.1fs", state.job.id, time.monotonic() - started)


async def follow_rescans(batch: Sequence[tuple[Record, Any]]) -> None:
    """Rescan verdicts (of the materializer's batch, once written): counted, logged for
    alerts, copied to the same bytes."""
    for record, _ in batch:
        if not isinstance(record, ScanVerdict) or record.rescan is None:
            continue
        try:
            await asyncio.wait_for(
                follow.on_verdict(context(), record, _send_verdict), FOLLOW_TIMEOUT_S
            )
        except Exception:  # never stuck: the verdicts' one agent waits for this
            log.exception("could not follow up a rescan verdict", extra={"stage": "rescan"})


materializer.follow_verdicts(follow_rescans)
