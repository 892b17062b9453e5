"""The one Faust app: extraction, orchestration, completion tracking, materializing.

Each stage is its own module that registers its agents on :data:`app`; their bodies call
plain functions that are tested without Kafka.  At-least-once everywhere (Faust's
exactly-once has open bugs): every consumer downstream is idempotent.

Settings are handed in: the worker calls :func:`create_app` with its settings, then
:func:`load_stages`; importing this module reads nothing.  The stages declare their topics,
tables and timers when they are imported, from :data:`settings` (the app's), so they are
imported after :func:`create_app`, never before.

The worker logs in to Kafka as the ``worker`` principal (SCRAM through aiokafka, which Faust
passes ``SASLCredentials`` to).  Its web server listens on the bind address only and serves
our health and metrics pages, none of Faust's own (table contents, router, graph, stats).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import faust
from mode import ServiceT
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from ops.kafka import WORKER, as_role, kafka_auth
from ops.kafka import topic as topic_name
from ops.metrics import expose
from ops.settings import Settings

# Set by create_app (module attributes, so the stages' ``from streams.app import app``).
app: faust.App
settings: Settings


def __getattr__(name: str) -> Any:
    if name in ("app", "settings"):
        raise RuntimeError(
            f"streams.app.{name} does not exist yet: call create_app(settings) before "
            "importing the stages (the worker does, then load_stages())"
        )
    raise AttributeError(name)


def create_app(given: Settings) -> faust.App:
    """The worker's Faust app for ``given`` settings (as the worker principal)."""
    global app, settings
    settings = as_role(given, WORKER)
    app = _faust_app(settings)
    _add_pages(app, settings)
    return app


class SteadyFlowControl(FlowControlEvent):
    """Faust's flow control, except that resuming flow that was never suspended leaves the
    agents' queues alone.  Faust resumes flow twice after a restart or rebalance: to read the
    table changelogs, and again once the stream partitions are resumed and sought to their
    committed offsets.  The second resume cleared what had been fetched in between, while
    the fetch position stayed past it: those events were never processed (faust-streaming
    #216, #596).  Kept, they are processed (at worst twice: every consumer is idempotent)."""

    def resume(self) -> None:
        suspended = not self.is_active()
        self._suspend.clear()
        self._resume.set()
        if suspended:
            self.clear()


class WorkerApp(faust.App):
    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return SteadyFlowControl(loop=self.loop)

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        dependencies = super().on_init_dependencies()
        # Faust's Monitor sensor keeps statistics of every event of every agent for its web
        # stats pages, which we do not serve (our metrics are ops/metrics): ~3 % of the
        # worker's CPU.  Faust still calls the object directly for commits and end offsets.
        self.sensors.remove(self.monitor)
        return dependencies


def _faust_app(settings: Settings) -> faust.App:
    auth = kafka_auth(settings)
    return WorkerApp(
        f"{settings.topic_prefix}intellidox-worker",
        broker=f"kafka://{settings.kafka.bootstrap}",
        broker_credentials=faust.SASLCredentials(
            username=auth.username, password=auth.password, mechanism=auth.mechanism
        ),
        store="memory://",
        # Faust makes this directory even for the memory store; never in the cwd.
        datadir=str(settings.var_dir / "worker" / "{conf.name}-data"),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=1,
        # Failover (issue 9): a restarted worker rejoins as the same static member (no
        # rebalance, same partitions); a crashed one's partitions move to a peer after the
        # session timeout.  No standby replicas: the memory store replays the changelog on
        # recovery anyway.
        consumer_group_instance_id=f"{socket.gethostname()}:{settings.bind.worker_port}",
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=15.0,
        # Rebalance without waiting for events in flight (they are processed again: every
        # consumer is idempotent); waiting hangs for good when an event in a batch is never
        # acked (seen after a session expired during a Kafka outage; robinhood/faust#402).
        stream_wait_empty=False,
        table_standby_replicas=0,
        producer_acks=-1,
        producer_linger_ms=5,  # a document's table and status writes come in bursts
        consumer_auto_offset_reset="earliest",
        web_host=settings.bind.host,
        web_bind=settings.bind.host,
        web_port=settings.bind.worker_port,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        web_in_thread=False,
        autodiscover=False,
    )


def source(name: str) -> Any:
    """A topic we read raw Avro bytes from (it exists: bootstrap created it)."""
    return app.topic(topic_name(settings, name), key_type=bytes, value_type=bytes)


def _add_pages(app: faust.App, settings: Settings) -> None:
    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready = app.consumer is not None and bool(app.consumer.assignment())
        status = 200 if ready else 503
        return web.json({"status": "ready" if ready else "starting"}, status=status)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        page = expose(request.headers.get("Authorization"), settings.metrics_token)
        headers = {"Content-Type": page.content_type}
        return web.bytes(page.body, status=page.status, headers=headers)


def load_stages() -> None:
    """Import the stage modules so their agents, tables and timers register."""
    from streams import (  # noqa: F401
        extraction,
        materializer,
        monitor,
        reextraction,
        registry,
        scripts,
        tracker,
    )
    from streams.rescan import stage  # noqa: F401
