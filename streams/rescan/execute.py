"""Running one rescan job: read the scanner's verdicts hour by hour, send rescan requests.

Rows are handled in index order and the position after the last one handled is saved with
the lease at least every ``SAVE_EVERY_S``, so a successor resumes there (a request sent just
before a crash may be sent again: a rescan is idempotent).  One request per content and job:
the same bytes get the rescan's changed verdict by copy (:mod:`streams.rescan.follow`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.s3 import bucket_for
from ops.settings import Settings
from schemas.scans import RescanRequest
from streams.rescan import jobs
from streams.rescan.plan import (
    Current,
    IndexRow,
    Position,
    RescanJob,
    TokenBucket,
    after,
    hours,
    needs_rescan,
    worth_a_look,
)
from streams.rescan.select import Document, current_rows, documents, index_page

log = logging.getLogger(__name__)
PAGE = 200
LEASE_S = 30.0
SAVE_EVERY_S = 5.0
# Rescans wait behind new documents (scanners take them only with engines to spare), so their
# pre-signed GETs live longer than a fresh request's; still one pinned object version, read-only.
URL_TTL_S = 3600

Send = Callable[[bytes, bytes], Awaitable[None]]  # key, value: returns once Kafka has it


@dataclasses.dataclass
class JobRun:
    """One worker's run of a job: what it needs, and how far it has got."""

    job: RescanJob
    owner: str
    settings: Settings
    s3: Any
    cassandra: Any  # ops.cql.CassandraClient
    pool: Any  # psycopg_pool.AsyncConnectionPool
    send: Send
    position: Position | None = None
    selected: int = 0
    requested: int = 0
    seen: set[tuple[str, str]] = dataclasses.field(default_factory=set)  # (tenant, sha256)
    saved_at: float = dataclasses.field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.position = self.job.position
        self.selected, self.requested = self.job.selected, self.job.requested
        self.bucket = TokenBucket(self.settings.rescan_rate_per_s, burst=1.0)


async def run(state: JobRun) -> bool:
    """Run the job to its end; False when it stopped being ours (superseded, lease lost)."""
    job = state.job
    start = job.since if state.position is None else state.position.hour
    for hour in hours(start, job.created_at):
        if not await _read_hour(state, hour):
            return False
    async with state.pool.connection() as conn:
        done = await jobs.finish(conn, _progress(state), state.owner)
    log.info(
        "rescan job %s done: %d selected, %d requested",
        job.id,
        state.selected,
        state.requested,
        extra={"scanner": job.scanner, "stage": "rescan"},
    )
    return done


async def _read_hour(state: JobRun, hour: datetime) -> bool:
    job, settings = state.job, state.settings
    start = after(state.position, hour)
    while True:
        rows = await asyncio.to_thread(
            index_page,
            state.cassandra,
            settings.cassandra.keyspace,
            job.scope,
            job.scanner,
            hour,
            start,
            PAGE,
        )
        if not await _handle_page(state, hour, rows):
            return False
        if len(rows) < PAGE:
            return await _save_due(state)
        start = (rows[-1].end_at, rows[-1].doc_id)


async def _handle_page(state: JobRun, hour: datetime, rows: list[IndexRow]) -> bool:
    job = state.job
    looked = [r for r in rows if worth_a_look(r, job)]
    current = await asyncio.to_thread(
        current_rows,
        state.cassandra,
        state.settings.cassandra.keyspace,
        job.scanner,
        [r.doc_id for r in looked],
    )
    chosen = [r for r in looked if needs_rescan(r, current.get(r.doc_id), job)]
    async with state.pool.connection() as conn:
        docs = await documents(conn, [r.doc_id for r in chosen])
    picked = {r.doc_id for r in chosen if _wanted(job, r, docs.get(r.doc_id))}
    state.selected += len(picked)
    for row in rows:
        if row.doc_id in picked:
            await _request(state, docs[row.doc_id], current[row.doc_id])
        state.position = Position(hour, row.end_at, row.doc_id)
        if not await _save_due(state):
            return False
    return True


def _wanted(job: RescanJob, row: IndexRow, doc: Document | None) -> bool:
    """Stored (still), of the tenant the verdict says, with the bytes the job asks for."""
    if doc is None or doc.tenant != row.tenant:
        return False
    return job.sha256 is None or doc.sha256 == job.sha256


async def _request(state: JobRun, doc: Document, current: Current) -> None:
    job = state.job
    content = (doc.tenant, doc.sha256)
    if content in state.seen:
        return  # the same bytes are being rescanned: the changed verdict is copied
    state.seen.add(content)
    wait = state.bucket.reserve(time.monotonic())
    if wait > 0:
        await asyncio.sleep(wait)
    record = rescan_request(state.settings, state.s3, job, doc, current, datetime.now(UTC))
    await state.send(record.kafka_key, record.encode())
    state.requested += 1


def rescan_request(
    settings: Settings, s3: Any, job: RescanJob, doc: Document, current: Current, now: datetime
) -> RescanRequest:
    params = {"Bucket": bucket_for(settings, doc.created_at.year), "Key": str(doc.id)}
    if doc.object_version is not None:
        params["VersionId"] = doc.object_version  # the bytes pinned at confirm
    url = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=URL_TTL_S)
    return RescanRequest(
        doc_id=str(doc.id),
        tenant=doc.tenant,
        scanner=job.scanner,
        file_name=doc.file_name,
        file_size=doc.file_size,
        file_type=doc.file_type,
        content_type=doc.content_type,
        sha256=doc.sha256,
        download_url=url,
        url_expires_at=now + timedelta(seconds=URL_TTL_S),
        previous_verdict=current.verdict,
        previous_signatures_version=current.signatures_version,
        signatures_version=job.signatures_version,
        reason=job.reason,
        job_id=str(job.id),
        requested_at=now,
    )


def lease_s(settings: Settings) -> float:
    """Long enough for a few saves, even when the rate makes each request wait long."""
    return max(LEASE_S, 3 / settings.rescan_rate_per_s)


def _progress(state: JobRun) -> RescanJob:
    return dataclasses.replace(state.job, selected=state.selected, requested=state.requested)


async def _save_due(state: JobRun) -> bool:
    """Renew the lease and save the position when it is time; False once the job is lost."""
    if time.monotonic() - state.saved_at < SAVE_EVERY_S:
        return True
    state.saved_at = time.monotonic()
    async with state.pool.connection() as conn:
        ours = await jobs.save(
            conn, _progress(state), state.owner, state.position, lease_s(state.settings)
        )
    if not ours:
        log.info("rescan job %s is no longer ours; stopping", state.job.id)
    return ours
