"""``intellidox storage-events``: follows the filer's metadata log and marks uploads landed.

Why the filer's gRPC subscription and not its Kafka notification (``notification.toml``,
``[notification.kafka]``)?  SeaweedFS 4.48's Kafka notification can log in with
SASL/SCRAM-SHA-512, so it would fit our brokers, but it is fire-and-forget: a sarama async
producer whose failed deliveries are only logged, with no position to replay from, so a
Kafka hiccup silently loses uploads; the storage tier would hold a Kafka password; and one
filer feeds one topic, whatever deployment (or test stack) the bucket belongs to.  The
subscription resumes from any time in the filer's persisted metadata log, so with our own
cursor (``storage_event_cursors``) nothing is lost while this process, Postgres or the filer
is away; the filer needs no configuration; and what we write goes through the same outbox
as confirm, published by the gateway's relay with the gateway's Kafka principal, so this
process holds no Kafka credential at all.  It shows the filer a client certificate: the
filer's gRPC wants mutual TLS (ops/services/seaweedfs_tls.py; README "Storage events").

Why a process of its own (started by ``intellidox up`` and the test stacks), not the gateway
or the worker?  Every subscriber receives every event (there are no consumer groups), so
putting it in each gateway would multiply the work with the HTTP fleet, and give the
internet-facing process a line to the storage's internal API.  Several listener processes
may run side by side for availability: each applies every event, the conditional update
makes all but the first a no-op, and they share one cursor that only moves forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
from aiohttp import web
from prometheus_client import Counter, Histogram
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from gateway import db, storage_events
from ops.defaults import refuse_repository_defaults
from ops.filer_meta import MetaEvent, WireError, filer_address, subscribe, tls_files
from ops.metrics import expose
from ops.settings import Settings

log = logging.getLogger(__name__)
REPLAY_MARGIN_NS = 60 * 10**9  # resume this much before the cursor (filers' clocks, batches)
SAVE_EVERY_S = 1.0
RETRY_S = 1.0

EVENTS = Counter(
    "intellidox_storage_events",
    "Filer metadata events by outcome: uploaded (a document moved to uploaded), unchanged "
    "(a document's upload, already past requested or of another size), ignored (not an upload)",
    ["outcome"],
)
DELAY = Histogram(
    "intellidox_storage_event_delay_seconds",
    "From the filer's event time to the document marked uploaded",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0),
)
_OUTAGES = (grpc.RpcError, psycopg.OperationalError, PoolTimeout, WireError, TimeoutError)


class Listener:
    """One subscription: applies events in order, remembers the last one applied."""

    def __init__(self, settings: Settings, pool: AsyncConnectionPool) -> None:
        self.settings, self.pool = settings, pool
        self.name = f"storage-events:{settings.s3.bucket_prefix}"
        self.position_ns = 0  # every event up to here is applied
        self.saved_ns = 0
        self.connected = asyncio.Event()

    async def start_position(self) -> int:
        saved = await db.read(self.pool, lambda conn: _load_cursor(conn, self.name))
        self.saved_ns = saved or 0
        return (saved or time.time_ns()) - REPLAY_MARGIN_NS

    async def follow(self, since_ns: int) -> None:
        """Apply events until the stream or Postgres breaks (the caller resumes)."""
        client_id = int.from_bytes(os.urandom(3), "big")  # tells our subscriptions apart
        prefix = storage_events.path_prefix(self.settings)
        address = filer_address(self.settings)
        tls = tls_files(self.settings)
        async for event in subscribe(
            address, self.name, prefix, since_ns, client_id, self.connected, tls
        ):
            await self.apply(event)
            self.position_ns = max(self.position_ns, event.ts_ns)

    async def apply(self, event: MetaEvent) -> None:
        try:
            upload = storage_events.landed(self.settings, event)
        except (ValueError, OverflowError, OSError) as exc:  # a time no clock can hold, say
            log.warning("ignored a filer event that makes no sense: %s", exc)
            upload = None
        if upload is None:
            EVENTS.labels("ignored").inc()
            return
        changed = await db.write(
            self.pool, lambda conn: storage_events.record(conn, self.settings, upload)
        )
        EVENTS.labels("uploaded" if changed else "unchanged").inc()
        if changed:
            DELAY.observe(max(0.0, time.time() - upload.at.timestamp()))
            log.info("upload landed", extra={"doc_id": str(upload.doc_id), "size": upload.size})

    async def save_cursor(self) -> None:
        if self.position_ns > self.saved_ns:
            position = self.position_ns
            await db.write(self.pool, lambda conn: _save_cursor(conn, self.name, position))
            self.saved_ns = position


async def _load_cursor(conn: psycopg.AsyncConnection[Any], name: str) -> int | None:
    cur = await conn.execute("SELECT ts_ns FROM storage_event_cursors WHERE name = %s", (name,))
    row = await cur.fetchone()
    return int(row[0]) if row else None


async def _save_cursor(conn: psycopg.AsyncConnection[Any], name: str, ts_ns: int) -> None:
    await conn.execute(
        "INSERT INTO storage_event_cursors (name, ts_ns) VALUES (%s, %s)"
        " ON CONFLICT (name) DO UPDATE SET ts_ns = GREATEST(storage_event_cursors.ts_ns,"
        " EXCLUDED.ts_ns), updated_at = now()",
        (name, ts_ns),
    )


async def run_listener(listener: Listener, stop: asyncio.Event) -> None:
    """Follow the filer until ``stop``; after an outage resume from the last applied event."""
    since_ns: int | None = None
    while not stop.is_set():
        try:
            if since_ns is None:
                since_ns = await listener.start_position()
            await listener.follow(since_ns)
        except _OUTAGES as exc:
            log.warning("storage events interrupted (%s); resuming in %.0fs", _brief(exc), RETRY_S)
        except Exception:  # a bug or a schema not migrated: say so loudly, keep trying
            log.exception("storage events failed; resuming in %.0fs", RETRY_S)
        listener.connected.clear()
        if since_ns is not None:
            since_ns = max(since_ns, listener.position_ns)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RETRY_S)


async def save_cursor_periodically(listener: Listener, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAVE_EVERY_S)
        try:
            await listener.save_cursor()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            log.warning("storage events cursor not saved (%s); next try in 1s", _brief(exc))


def _brief(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"filer: {exc.code().name} {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


LISTENER = web.AppKey("listener", Listener)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    listener = request.app[LISTENER]
    if not listener.connected.is_set():
        return web.json_response({"status": "connecting to the filer"}, status=503)
    return web.json_response({"status": "ready", "position_ns": listener.position_ns})


async def metrics_handler(request: web.Request) -> web.Response:
    listener = request.app[LISTENER]
    page = expose(request.headers.get("Authorization"), listener.settings.metrics_token)
    return web.Response(
        body=page.body, status=page.status, headers={"Content-Type": page.content_type}
    )


def create_app(settings: Settings) -> web.Application:
    refuse_repository_defaults(settings, "storage-events")
    if not settings.dev_mode and tls_files(settings) is None:
        raise SystemExit(
            "intellidox storage-events: refusing a filer connection without mutual TLS outside"
            " the local dev runtime: set INTELLIDOX_FILER_GRPC_CA, _CERT and _KEY"
        )
    app = web.Application()

    async def context(app: web.Application) -> AsyncIterator[None]:
        pool = db.open_pool(settings.postgres.dsn, min_size=1, max_size=2)
        await pool.open(wait=True, timeout=30)
        listener = app[LISTENER] = Listener(settings, pool)
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(run_listener(listener, stop)),
            asyncio.create_task(save_cursor_periodically(listener, stop)),
        ]
        yield
        stop.set()
        for task in tasks:  # a stream blocked on the filer does not see ``stop``
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(*_OUTAGES):
            await listener.save_cursor()
        await pool.close()

    app.cleanup_ctx.append(context)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app


def run(settings: Settings) -> None:
    from ops.logs import setup_logging

    setup_logging("storage-events", settings)
    web.run_app(
        create_app(settings),
        host=settings.bind.host,
        port=settings.bind.storage_events_port,
        access_log=None,
        print=None,
    )
