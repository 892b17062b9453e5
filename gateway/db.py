"""Postgres from the gateway: outages become 503s, and the pool heals as soon as it is back.

After Postgres restarts, every pooled connection is dead.  The first request that meets one
makes the pool check all its idle connections (dropping the dead ones) and, for a read,
retries once on a fresh connection; so once Postgres accepts connections again no request
fails.  While it is down, requests wait at most a few seconds for a connection and the
middleware answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[AsyncConnection[Any]], Awaitable[T]]
CONNECT_WAIT_S = 3.0  # how long a request waits for a connection before it is told 503
RETRY_AFTER_S = 2

# What "the database is away" looks like (the middleware turns these into 503).
UNAVAILABLE: tuple[type[BaseException], ...] = (psycopg.OperationalError, PoolTimeout)


def open_pool(dsn: str, min_size: int = 4, max_size: int = 10) -> AsyncConnectionPool:
    # Autocommit: a read needs no transaction, and the pool then has nothing to roll back
    # when the connection comes back (one round trip less per request).
    return AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=CONNECT_WAIT_S,
        reconnect_timeout=0,  # never give up reconnecting (the default stops after 5 min)
        kwargs={"autocommit": True, "prepare_threshold": 0},
    )


async def read(pool: AsyncConnectionPool, work: Work[T]) -> T:
    """Run an idempotent read; on a broken connection heal the pool and try once more."""
    try:
        return await _run(pool, work)
    except psycopg.OperationalError:
        await heal(pool)
        return await _run(pool, work)


async def write(pool: AsyncConnectionPool, work: Work[T]) -> T:
    """Run a write once (it may have committed before the connection broke: the client
    retries, and every write of ours is guarded so a retry is harmless)."""
    try:
        return await _run(pool, work)
    except psycopg.OperationalError:
        await heal(pool)
        raise


async def _run(pool: AsyncConnectionPool, work: Work[T]) -> T:
    async with pool.connection() as conn:
        return await work(conn)


async def heal(pool: AsyncConnectionPool) -> None:
    """Drop every dead idle connection now (not one per failed request)."""
    try:
        await asyncio.wait_for(pool.check(), CONNECT_WAIT_S)
    except (TimeoutError, psycopg.OperationalError, PoolTimeout):
        log.warning("postgres still unavailable", exc_info=True)
