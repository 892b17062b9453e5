"""Rescan jobs on a real Postgres: a change triggers once across workers, one holder at a time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from streams.rescan import jobs
from streams.rescan.plan import Position

pytestmark = pytest.mark.integration
SINCE = datetime.now(UTC) - timedelta(days=7)
Connect = Callable[[], Any]


@pytest.fixture
async def connect(pg_conninfo: str, pg_schema: tuple[Any, str]) -> AsyncIterator[Callable[[], Any]]:
    """Connections on the test's schema, as separate workers would hold them."""
    _, schema = pg_schema
    opened: list[psycopg.AsyncConnection[Any]] = []

    async def open_one() -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            pg_conninfo, autocommit=True, options=f"-c search_path={schema}"
        )
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        await conn.close()


async def _everyone_notes(connect: Connect, version: str, workers: int = 4) -> list[Any]:
    conns = [await connect() for _ in range(workers)]
    return await asyncio.gather(
        *(jobs.note_version(c, "s.", "hash-reputation", version, SINCE) for c in conns)
    )


async def test_each_change_opens_one_job_however_many_workers_see_it(connect: Connect) -> None:
    assert await _everyone_notes(connect, "1-aaa") == [None] * 4  # the baseline: no job
    opened = [j for j in await _everyone_notes(connect, "2-bbb") if j is not None]
    assert len(opened) == 1
    assert [j for j in await _everyone_notes(connect, "2-bbb") if j is not None] == []
    # A rollout where hosts alternate between versions it has seen triggers nothing more.
    assert await _everyone_notes(connect, "1-aaa") == [None] * 4
    conn = await connect()
    job = await jobs.get(conn, opened[0])
    assert job is not None and job.signatures_version == "2-bbb" and job.reason == "signatures"
    assert (job.scanner, job.scope, job.state) == ("hash-reputation", "s.", "pending")
    # Another stack (scope) sharing the database keeps its own baseline.
    assert await jobs.note_version(conn, "other.", "hash-reputation", "2-bbb", SINCE) is None


async def test_a_newer_version_supersedes_the_open_job(connect: Connect) -> None:
    conn = await connect()
    await jobs.note_version(conn, "s.", "clamav", "27500", SINCE)
    first = await jobs.note_version(conn, "s.", "clamav", "27501", SINCE)
    second = await jobs.note_version(conn, "s.", "clamav", "27502", SINCE)
    assert first and second
    old, new = await jobs.get(conn, first), await jobs.get(conn, second)
    assert old is not None and old.state == "superseded"
    assert new is not None and new.state == "pending"


async def test_one_holder_at_a_time_and_a_successor_resumes_where_it_stopped(
    connect: Connect,
) -> None:
    conn, peer = await connect(), await connect()
    job_id = await jobs.create_manual(conn, "s.", "yara", SINCE, None)
    claims = await asyncio.gather(
        jobs.claim(conn, "s.", "w1", 30), jobs.claim(peer, "s.", "w2", 30)
    )
    held = [c for c in claims if c is not None]
    assert len(held) == 1 and held[0].id == job_id
    owner = "w1" if claims[0] is not None else "w2"
    other = "w2" if owner == "w1" else "w1"
    assert await jobs.claim(conn, "s.", other, 30) is None  # held
    hour = SINCE.replace(minute=0, second=0, microsecond=0)
    position = Position(hour, SINCE, uuid.uuid4())
    job = held[0]
    assert await jobs.save(conn, job, owner, position, 0.05)  # a lease that runs out at once
    assert not await jobs.save(conn, job, other, position, 30)  # not the holder
    await asyncio.sleep(0.2)
    taken = await jobs.claim(peer, "s.", other, 30)
    assert taken is not None and taken.position == position  # resumes there
    assert not await jobs.save(conn, job, owner, position, 30)  # the old holder stops
    assert await jobs.finish(peer, taken, other)
    done = await jobs.get(conn, job_id)
    assert done is not None and done.state == "done"
    assert await jobs.claim(conn, "s.", owner, 30) is None
