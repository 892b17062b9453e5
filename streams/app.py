"""The one Faust app: extraction, orchestration, completion tracking, materializing.

Each stage is its own module that registers its agents on :data:`app`; their bodies call
plain functions that are tested without Kafka.  At-least-once everywhere (Faust's
exactly-once has open bugs): every consumer downstream is idempotent.

The worker logs in to Kafka as the ``worker`` principal (SCRAM through aiokafka, which Faust
passes ``SASLCredentials`` to).  Its web server listens on ``settings.host`` only and serves
our health and metrics pages, none of Faust's own (table contents, router, graph, stats).
"""

from __future__ import annotations

import socket
from typing import Any

import faust

from ops.kafka import WORKER, as_role, kafka_auth
from ops.kafka import topic as topic_name
from ops.metrics import expose
from ops.settings import get_settings

settings = as_role(get_settings(), WORKER)
_auth = kafka_auth(settings)

app = faust.App(
    f"{settings.topic_prefix}intellidox-worker",
    broker=f"kafka://{settings.kafka_bootstrap}",
    broker_credentials=faust.SASLCredentials(
        username=_auth.username, password=_auth.password, mechanism=_auth.mechanism
    ),
    store="memory://",
    key_serializer="raw",
    value_serializer="raw",
    topic_partitions=settings.kafka_partitions,
    topic_replication_factor=1,
    # Failover (issue 9): a restarted worker rejoins as the same static member (no rebalance,
    # same partitions); a crashed one's partitions move to a peer after the session timeout.
    # No standby replicas: the memory store replays the changelog on recovery anyway.
    consumer_group_instance_id=f"{socket.gethostname()}:{settings.worker_port}",
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.0,
    broker_rebalance_timeout=15.0,
    # Rebalance without waiting for events in flight (they are processed again: every
    # consumer is idempotent); waiting hangs for good when an event in a batch is never acked
    # (seen after a session expired during a Kafka outage; faust issue robinhood/faust#402).
    stream_wait_empty=False,
    table_standby_replicas=0,
    producer_acks=-1,
    producer_linger_ms=1,
    consumer_auto_offset_reset="earliest",
    web_host=settings.host,
    web_bind=settings.host,
    web_port=settings.worker_port,
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


@app.page("/healthz")
async def healthz(web: Any, request: Any) -> Any:
    return web.json({"status": "ok"})


@app.page("/readyz")
async def readyz(web: Any, request: Any) -> Any:
    ready = app.consumer is not None and bool(app.consumer.assignment())
    return web.json({"status": "ready" if ready else "starting"}, status=200 if ready else 503)


@app.page("/metrics")
async def metrics(web: Any, request: Any) -> Any:
    page = expose(request.headers.get("Authorization"), settings.metrics_token)
    return web.bytes(page.body, status=page.status, headers={"Content-Type": page.content_type})


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
