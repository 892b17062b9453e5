"""Rescan jobs in Postgres (``scanner_signatures``, ``rescan_jobs``; migration 0010).

Nothing may assume one worker: a signatures version is recorded by whichever worker inserts
it first (the primary key decides), and only that insert opens a job; a job is run by the
worker holding its lease, which it renews as it goes, saving its position each time, so a
successor resumes where a crashed holder stopped.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from streams.rescan.plan import Position, RescanJob

_COLUMNS = (
    "id, scope, scanner, reason, signatures_version, since, created_at, sha256, pos_hour,"
    " pos_end_at, pos_doc, selected, requested, state"
)


def _job(row: dict[str, Any]) -> RescanJob:
    position = None
    if row["pos_hour"] is not None:
        position = Position(row["pos_hour"], row["pos_end_at"], row["pos_doc"])
    return RescanJob(
        id=row["id"],
        scope=row["scope"],
        scanner=row["scanner"],
        reason=row["reason"],
        signatures_version=row["signatures_version"],
        since=row["since"],
        created_at=row["created_at"],
        sha256=row["sha256"],
        position=position,
        selected=row["selected"],
        requested=row["requested"],
        state=row["state"],
    )


async def note_version(
    conn: AsyncConnection[Any], scope: str, scanner: str, version: str, since: datetime
) -> uuid.UUID | None:
    """Record that ``scanner`` announced ``version``; returns the job this opened, if any.

    Only the first insert of a version opens a job, and only when the scanner had announced
    another version before (the first one seen is the baseline: nothing to compare with).
    A new version supersedes the scanner's open signature jobs: the new one covers them."""
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO scanner_signatures (scope, scanner, signatures_version)"
            " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (scope, scanner, version),
        )
        if cur.rowcount != 1:
            return None  # seen before, by this worker or another
        cur = await conn.execute(
            "SELECT count(*) FROM scanner_signatures WHERE scope = %s AND scanner = %s",
            (scope, scanner),
        )
        row = await cur.fetchone()
        if row is None or row[0] < 2:
            return None
        await conn.execute(
            "UPDATE rescan_jobs SET state = 'superseded', finished_at = now(), lease_until = NULL"
            " WHERE scope = %s AND scanner = %s AND reason = 'signatures'"
            " AND state IN ('pending', 'running')",
            (scope, scanner),
        )
        return await _insert(conn, scope, scanner, "signatures", version, since, None)


async def create_manual(
    conn: AsyncConnection[Any], scope: str, scanner: str, since: datetime, sha256: str | None
) -> uuid.UUID:
    """An operator's job (``intellidox rescan``): every conclusive verdict in the window."""
    async with conn.transaction():
        return await _insert(conn, scope, scanner, "manual", None, since, sha256)


async def _insert(
    conn: AsyncConnection[Any],
    scope: str,
    scanner: str,
    reason: str,
    version: str | None,
    since: datetime,
    sha256: str | None,
) -> uuid.UUID:
    job_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO rescan_jobs (id, scope, scanner, reason, signatures_version, since, sha256)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (job_id, scope, scanner, reason, version, since, sha256),
    )
    return job_id


async def claim(
    conn: AsyncConnection[Any], scope: str, owner: str, lease_s: float
) -> RescanJob | None:
    """Take the oldest open job nobody holds (or whose holder's lease ran out)."""
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            f"UPDATE rescan_jobs SET state = 'running', owner = %s,"
            f" lease_until = now() + make_interval(secs => %s)"
            f" WHERE id = (SELECT id FROM rescan_jobs WHERE scope = %s"
            f" AND state IN ('pending', 'running')"
            f" AND (lease_until IS NULL OR lease_until < now())"
            f" ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_COLUMNS}",
            (owner, lease_s, scope),
        )
        row = await cur.fetchone()
    return None if row is None else _job(row)


async def save(
    conn: AsyncConnection[Any],
    job: RescanJob,
    owner: str,
    position: Position | None,
    lease_s: float,
) -> bool:
    """Renew the lease and record progress; False when the job is no longer ours
    (superseded by a newer version, or the lease ran out and a peer took it)."""
    pos = position or Position(job.since)
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE rescan_jobs SET lease_until = now() + make_interval(secs => %s),"
            " pos_hour = %s, pos_end_at = %s, pos_doc = %s, selected = %s, requested = %s"
            " WHERE id = %s AND owner = %s AND state = 'running'",
            (
                lease_s,
                pos.hour,
                pos.end_at,
                pos.doc_id,
                job.selected,
                job.requested,
                job.id,
                owner,
            ),
        )
        return cur.rowcount == 1


async def finish(conn: AsyncConnection[Any], job: RescanJob, owner: str) -> bool:
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE rescan_jobs SET state = 'done', finished_at = now(), lease_until = NULL,"
            " selected = %s, requested = %s WHERE id = %s AND owner = %s AND state = 'running'",
            (job.selected, job.requested, job.id, owner),
        )
        return cur.rowcount == 1


async def get(conn: AsyncConnection[Any], job_id: uuid.UUID) -> RescanJob | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {_COLUMNS} FROM rescan_jobs WHERE id = %s", (job_id,))
    row = await cur.fetchone()
    return None if row is None else _job(row)
