"""Rate limits per API key: token buckets shared by every gateway, and uploads in progress.

Nothing may assume one gateway process, so a tenant's buckets live in Postgres
(``rate_buckets``, refilled and taken by ``take_tokens`` in one round trip).  A process takes
tokens in small leases - a tenth of a second's worth at the tenant's rate, at least one - and
spends them locally: at full rate a tenant costs each gateway about ten round trips a second,
not one per request.  Tokens are taken before they are spent, so the gateways together never
admit more than the bucket holds; the price is that a lease one gateway holds is not
available to another (at most one lease per gateway and bucket, dropped after
``LEASE_TTL_S``).  An empty bucket says when its next token comes; until then the process
answers 429 without asking Postgres again, so a flood costs one round trip per refill.

Three limits, each with its own bucket or count (README "Rate limits"):
- ``requests``: every request that carries a valid API key, except event streams;
- ``events``: event streams and their reconnects, by the tenant of the token or key, in a
  bucket of their own, so a tenant's API calls never starve a browser's reconnects;
- ``uploads``: documents requested whose bytes are not in yet and whose upload URLs are still
  valid, counted when a document is created, under a per-tenant lock (exact across gateways).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, NoReturn

from aiohttp import web
from prometheus_client import Counter, Histogram
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from gateway import db
from gateway.auth import Principal, bearer_key
from gateway.errors import UNAVAILABLE, fail_retry_later
from gateway.state import APP
from ops.settings import Settings

log = logging.getLogger(__name__)

LEASE_WINDOW_S = 0.1  # a lease is this much of the tenant's rate (at least one token)
LEASE_TTL_S = 1.0  # an unspent lease is dropped after this (it cannot be spent much later)
UPLOAD_RETRY_S = 5  # Retry-After at most, when uploads in progress are at the limit
MAX_BUCKETS = 10_000  # buckets a process remembers (one per tenant and kind)
EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
EVENTS_ROUTE = "/docs/{doc_id}/events"

LIMITED = Counter(
    "intellidox_rate_limited_requests",
    "Requests answered 429, by the limit hit (requests, events, uploads)",
    ["limit"],
)
ADMITTED = Counter(
    "intellidox_rate_limit_admitted_requests",
    "Requests a rate limit let through, by limit",
    ["limit"],
)
LEASE_SECONDS = Histogram(
    "intellidox_rate_limit_lease_seconds",
    "Time to take a lease of tokens from a shared bucket (one Postgres round trip)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0),
)
FAILED_OPEN = Counter(
    "intellidox_rate_limit_failed_open",
    "Leases granted without the shared bucket because Postgres did not answer",
)


@dataclass(frozen=True)
class Limits:
    """A key's limits: its own values where its row has them, the gateway's defaults else."""

    per_s: float
    burst: int
    uploads: int

    @classmethod
    def of(cls, principal: Principal, settings: Settings) -> Limits:
        return cls(
            per_s=principal.rate_per_s or settings.rate_limit_per_s,
            burst=principal.rate_burst or settings.rate_limit_burst,
            uploads=(
                settings.rate_limit_uploads
                if principal.max_uploads is None
                else principal.max_uploads
            ),
        )


TakeTokens = Callable[[str, float, int, int], Awaitable[tuple[int, float]]]


@dataclass
class _Held:
    """One bucket as this process sees it: a lease being spent, or 'empty until'."""

    tokens: int = 0
    expires: float = 0.0
    denied_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Leases:
    """This process's side of the shared buckets: leases of tokens, spent locally."""

    def __init__(
        self,
        take: TakeTokens,
        window_s: float = LEASE_WINDOW_S,
        ttl_s: float = LEASE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._take, self.window_s, self.ttl_s, self._clock = take, window_s, ttl_s, clock
        self._held: OrderedDict[str, _Held] = OrderedDict()

    def lease_size(self, per_s: float, burst: int) -> int:
        return max(1, min(burst, math.ceil(per_s * self.window_s)))

    async def acquire(self, bucket: str, per_s: float, burst: int) -> float:
        """0 when a token was taken; else the seconds until the bucket has one again."""
        held = self._get(bucket)
        wait = self._spend(held)
        if wait is not None:
            return wait
        async with held.lock:  # one round trip per bucket at a time; the others wait for it
            wait = self._spend(held)
            if wait is not None:
                return wait
            return await self._lease(held, bucket, per_s, burst)

    async def _lease(self, held: _Held, bucket: str, per_s: float, burst: int) -> float:
        size = self.lease_size(per_s, burst)
        try:
            granted, wait_s = await self._take(bucket, per_s, burst, size)
        except UNAVAILABLE as exc:  # Postgres away: admit a lease's worth rather than refuse
            FAILED_OPEN.inc()
            log.warning("rate limit bucket %s unavailable, failing open: %s", bucket, exc)
            granted, wait_s = size, 0.0
        now = self._clock()
        if granted < 1:
            held.denied_until = now + wait_s
            return max(wait_s, 1e-3)
        held.tokens, held.expires = granted - 1, now + self.ttl_s
        return 0.0

    def _spend(self, held: _Held) -> float | None:
        now = self._clock()
        if held.tokens > 0 and now < held.expires:
            held.tokens -= 1
            return 0.0
        if now < held.denied_until:
            return held.denied_until - now
        return None

    def _get(self, bucket: str) -> _Held:
        held = self._held.get(bucket)
        if held is None:
            held = self._held[bucket] = _Held()
            while len(self._held) > MAX_BUCKETS:
                self._held.popitem(last=False)
        self._held.move_to_end(bucket)
        return held


async def take_tokens(
    pool: AsyncConnectionPool, bucket: str, per_s: float, burst: int, want: int
) -> tuple[int, float]:
    """One round trip to the shared bucket: (tokens granted, seconds until one if none)."""

    async def work(conn: AsyncConnection[Any]) -> tuple[int, float]:
        cur = await conn.execute(
            "SELECT granted, wait_s FROM take_tokens(%s, %s, %s, %s)",
            (bucket, per_s, float(burst), want),
        )
        row = await cur.fetchone()
        assert row is not None  # a function with OUT parameters answers one row
        return int(row[0]), float(row[1])

    with LEASE_SECONDS.time():
        return await db.write(pool, work)  # not retried: a retry could take twice


def retry_after(wait_s: float) -> int:
    """Whole seconds for ``Retry-After``: at least 1, never earlier than the wait."""
    return max(1, math.ceil(wait_s))


@dataclass
class RateLimiter:
    settings: Settings
    leases: Leases

    async def check_requests(self, principal: Principal) -> None:
        limits = Limits.of(principal, self.settings)
        wait = await self.leases.acquire(f"requests:{principal.tenant}", limits.per_s, limits.burst)
        if wait:
            message = f"{limits.per_s:g} requests/s with bursts of {limits.burst} for this tenant"
            _refuse("requests", message, wait)
        ADMITTED.labels("requests").inc()

    async def check_events(self, tenant: str) -> None:
        per_s, burst = self.settings.rate_limit_events_per_s, self.settings.rate_limit_events_burst
        wait = await self.leases.acquire(f"events:{tenant}", per_s, burst)
        if wait:
            _refuse("events", f"{per_s:g} event streams/s with bursts of {burst}", wait)
        ADMITTED.labels("events").inc()


def _refuse(limit: str, what: str, wait_s: float) -> NoReturn:
    LIMITED.labels(limit).inc()
    seconds = retry_after(wait_s)
    fail_retry_later(
        429, f"rate limit hit ({limit}): {what}; retry in {seconds} s", seconds, limit=limit
    )


LIMITER = web.AppKey("intellidox_rate_limiter", RateLimiter)


async def limiter_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``, after the gateway's resources: the limiter on the gateway's pool."""
    state = app[APP]
    app[LIMITER] = RateLimiter(state.settings, Leases(partial(take_tokens, state.pool)))
    yield


async def admit(request: web.Request) -> None:
    """Count the request against its tenant's bucket (429 when it is empty).  Unauthenticated
    requests pass: their handler answers 401 (a bucket needs a tenant).  An event stream is
    counted by its handler (:func:`admit_events`), once it knows who asks: its events token
    is then checked once."""
    limiter = request.app.get(LIMITER)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else None
    if limiter is None or route in EXEMPT or route == EVENTS_ROUTE:
        return
    principal = await _principal(request)
    if principal is not None:
        await limiter.check_requests(principal)


async def admit_events(request: web.Request, tenant: str) -> None:
    """Count an event stream against its tenant's bucket (429 when it is empty)."""
    limiter = request.app.get(LIMITER)
    if limiter is not None:
        await limiter.check_events(tenant)


async def _principal(request: web.Request) -> Principal | None:
    key = bearer_key(request.headers.get("Authorization"))
    return await request.app[APP].keys.principal_for(key) if key else None


async def upload_guard(
    request: web.Request, tenant: str
) -> Callable[[AsyncConnection[Any]], Awaitable[None]]:
    """429 now when the tenant's uploads in progress are at its limit; returns the exact
    check to run again in the transaction that creates the document (under a lock)."""
    state = request.app[APP]
    principal = await _principal(request)
    limit = Limits.of(principal or Principal(tenant), state.settings).uploads
    ttl = timedelta(seconds=state.settings.upload_url_ttl_s)
    await db.read(state.pool, lambda conn: check_uploads(conn, tenant, limit, ttl, lock=False))
    return partial(check_uploads, tenant=tenant, limit=limit, ttl=ttl, lock=True)


async def check_uploads(
    conn: AsyncConnection[Any], tenant: str, limit: int, ttl: timedelta, lock: bool
) -> None:
    """429 when ``tenant`` has ``limit`` uploads in progress.  With ``lock`` (inside the
    creating transaction) concurrent creations of one tenant take turns, on any gateway."""
    if lock:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"uploads:{tenant}",))
    now = datetime.now(UTC)
    cur = await conn.execute(
        "SELECT count(*), min(created_at) FROM documents"
        " WHERE tenant = %s AND process_status = 'requested' AND created_at > %s",
        (tenant, now - ttl),
    )
    row = await cur.fetchone()
    assert row is not None  # an aggregate always answers one row
    count, oldest = int(row[0]), row[1]
    if count < limit:
        return
    frees_in = (oldest + ttl - now).total_seconds() if oldest else UPLOAD_RETRY_S
    what = f"{limit} uploads in progress (requested, not yet uploaded) for this tenant"
    _refuse("uploads", what, min(UPLOAD_RETRY_S, frees_in))
