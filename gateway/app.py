"""``create_app() -> web.Application``: the gateway with its resources in cleanup contexts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from importlib import resources

from aiohttp import web

from gateway import db, streaming  # noqa: F401  (streaming registers its routes)
from gateway.admin import SCRIPT_CHECK, admin_routes
from gateway.auth import ApiKeys
from gateway.cache import DocumentCache
from gateway.edge import edge
from gateway.hub import running_hub
from gateway.listing import listing_routes
from gateway.metrics import UNDECODABLE, count_streams, probe_outbox
from gateway.outbox import own_topics, run_relay
from gateway.page import page_routes
from gateway.ratelimit import limiter_context
from gateway.readafter import WATCH, ProjectionWatch
from gateway.registry import registry_routes
from gateway.routes import routes
from gateway.state import APP, GatewayState
from ops.cql import CassandraClient
from ops.defaults import refuse_repository_defaults
from ops.extractor_admin import ScriptCheck
from ops.kafka import GATEWAY, as_role
from ops.metrics import expose
from ops.s3 import s3_client
from ops.settings import Settings

log = logging.getLogger(__name__)


def _resources(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        # Autocommit: a read needs no transaction, and the pool then has nothing to roll back
        # when the connection comes back (one round trip less per request).
        pool = db.open_pool(settings.postgres.dsn)
        await pool.open(wait=True, timeout=30)
        cassandra = await asyncio.to_thread(CassandraClient.connect, settings)
        stop = asyncio.Event()
        relay = asyncio.create_task(run_relay(settings, stop))
        probe = probe_outbox(pool, own_topics(settings), settings.metrics_interval_s, stop)
        background = [relay, asyncio.create_task(probe)]
        async with running_hub(settings, UNDECODABLE.inc) as hub:
            keys = ApiKeys.create(pool)
            if settings.dev_mode:
                await keys.ensure(settings.dev_api_key, settings.dev_tenant)
            else:  # a dev key left from a local run must not open a production gateway
                await keys.revoke_dev_keys(settings.dev_api_key, Settings().dev_api_key)
            cache = DocumentCache(settings.meta_cache_s)
            hub.listeners.append(cache.evict)
            app[APP] = GatewayState(
                settings, pool, s3_client(settings), keys, cassandra, hub, cache
            )
            app[WATCH] = ProjectionWatch(app[APP])
            yield
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*background), timeout=10)
        cassandra.close()
        await pool.close()

    return context


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[APP]
    await db.read(state.pool, lambda conn: conn.execute("SELECT 1"))
    return web.json_response({"status": "ready", "hub": state.hub.ready.is_set()})


async def metrics_handler(request: web.Request) -> web.Response:
    token = request.app[APP].settings.metrics_token
    page = expose(request.headers.get("Authorization"), token)
    return web.Response(
        body=page.body, status=page.status, headers={"Content-Type": page.content_type}
    )


async def openapi(_request: web.Request) -> web.Response:
    spec = resources.files("gateway").joinpath("openapi.json").read_text()
    return web.json_response(json.loads(spec))


def create_app(settings: Settings, check_script: ScriptCheck | None = None) -> web.Application:
    """``check_script`` validates extractor scripts published through the admin API (the
    worker's sandbox check, passed in: the gateway does not import the worker's code); without
    it, publishing answers 503."""
    settings = as_role(settings, GATEWAY)  # its Kafka principal
    refuse_repository_defaults(settings, "gateway")
    app = web.Application(middlewares=[edge], client_max_size=64 * 1024)
    if check_script is not None:
        app[SCRIPT_CHECK] = check_script
    app.cleanup_ctx.append(_resources(settings))
    app.cleanup_ctx.append(limiter_context)
    app.on_response_prepare.append(count_streams)
    app.add_routes(routes)
    app.add_routes(admin_routes)
    app.add_routes(registry_routes)
    app.add_routes(listing_routes)
    app.add_routes(page_routes)  # /, /d/{id}, /static/*, /favicon.ico, /ui/config
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/openapi.json", openapi)
    return app


def _faster_loop() -> None:
    """uvloop where it exists (Linux, macOS); the stock loop elsewhere (Windows)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def raise_open_files() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: every held event stream is a socket, and the
    usual soft limit of 1,024 (systemd's, most shells') would refuse streams at about 1,000."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):  # a hard limit above what the kernel allows
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(settings: Settings, check_script: ScriptCheck | None = None) -> None:
    from ops.logs import setup_logging

    setup_logging("gateway", settings)
    raise_open_files()
    _faster_loop()
    web.run_app(
        create_app(settings, check_script),
        host=settings.bind.host,
        port=settings.bind.gateway_port,
        access_log=None,
        print=lambda _: None,
    )
