"""The gateway's metrics: requests per route, SSE streams open, and the outbox's backlog.

Requests are labelled by the route's template (``/docs/{doc_id}/meta``), never the raw path,
so a scan of random URLs cannot blow up the series (unmatched paths share one label).  The
outbox backlog is read from Postgres every ``metrics_interval_s`` (two index look-ups), not
on the request path; its rows are only this gateway's topics (environments may share one
database).  Served by :func:`gateway.app.metrics_handler` from the default registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram
from psycopg_pool import AsyncConnectionPool

from ops.metrics import HTTP_BUCKETS, PROBE_ERRORS, PROBE_SUCCESS

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "intellidox_http_requests",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
DURATION = Histogram(
    "intellidox_http_request_duration_seconds",
    "Time to answer an HTTP request (an SSE stream: its whole life), by route template",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
)
SSE_OPEN = Gauge("intellidox_sse_streams_open", "Server-sent event streams open right now")
UNDECODABLE = Counter(
    "intellidox_gateway_undecodable_events", "Events the live hub could not decode"
)
OUTBOX_BACKLOG = Gauge(
    "intellidox_outbox_backlog", "Outbox rows not yet published to Kafka (this gateway's topics)"
)
OUTBOX_OLDEST = Gauge(
    "intellidox_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row (0: none)"
)


SSE_STREAM = "intellidox_sse_stream"  # request key: this request's stream is counted open


async def count_streams(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: an event stream is open from its headers to its handler's end."""
    if response.content_type == "text/event-stream":
        SSE_OPEN.inc()
        request[SSE_STREAM] = True


def status_of(exc: BaseException) -> str:
    """The status a request that raised ``exc`` is counted under."""
    if isinstance(exc, web.HTTPException):
        return str(exc.status)
    if isinstance(exc, asyncio.CancelledError):
        return "499"  # the client went away first
    return "500"


def observe(request: web.Request, status: str, started: float) -> None:
    """Count a finished request (and an event stream closed) by route and status."""
    if request.get(SSE_STREAM):
        SSE_OPEN.dec()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    REQUESTS.labels(request.method, route, status).inc()
    DURATION.labels(request.method, route).observe(time.perf_counter() - started)


@dataclass(frozen=True)
class Backlog:
    rows: int
    oldest_age_s: float


async def outbox_backlog(pool: AsyncConnectionPool, topics: Sequence[str]) -> Backlog:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)"
            " FROM outbox WHERE topic = ANY(%s)",
            (list(topics),),
        )
        row = await cur.fetchone()
    assert row is not None  # an aggregate always answers one row
    return Backlog(int(row[0]), float(row[1]))


async def probe_outbox(
    pool: AsyncConnectionPool, topics: Sequence[str], every_s: float, stop: asyncio.Event
) -> None:
    """Refresh the outbox gauges until ``stop``; a failed look is counted and skipped."""
    while not stop.is_set():
        try:
            backlog = await asyncio.wait_for(outbox_backlog(pool, topics), timeout=10)
            OUTBOX_BACKLOG.set(backlog.rows)
            OUTBOX_OLDEST.set(backlog.oldest_age_s)
            PROBE_SUCCESS.labels("outbox").set_to_current_time()
        except Exception as exc:  # Postgres away: the gauges keep their last values
            PROBE_ERRORS.labels("outbox").inc()
            log.warning("outbox probe failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
