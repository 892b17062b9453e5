"""The worker's look at the whole pipeline: lag, dead letters, stuck documents, scanners.

Every ``metrics_interval_s`` a timer reads (off the event loop) each consumer group's lag
(the worker's and every scanner group the registry knows) and each dead-letter topic's depth
from Kafka's admin API (ops/kafka_lag.py), and counts the documents in ``in_progress`` from
Postgres (a partial index keeps that an index scan).  Scanners' heartbeat ages and engine
versions come from the registry view this worker already follows, at scrape time.  A
collector turns the latest look into metrics; nothing here runs per event.

Several workers export the same values (each looks for itself); dashboards and alerts take
the ``max`` over instances.  Labels carry topic and group names without the topic prefix.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from ops.kafka_lag import LagReader, PartitionLag, TopicDepth
from ops.metrics import PROBE_ERRORS, PROBE_SUCCESS
from ops.settings import Settings
from schemas import topics
from schemas.records import ScannerHeartbeat
from streams import registry
from streams.app import app, settings
from streams.context import context

log = logging.getLogger(__name__)
WORKER_GROUP = "intellidox-worker"  # the Faust app id, under the topic prefix
# Dead letters this group has committed past are dealt with (`dlq replay` put them back);
# the rest are pending.  With no commits at all, every letter held is pending.
DLQ_GROUP = "intellidox-dlq-replay"
OVERDUE_MARGIN_S = 60.0  # beyond the longest deadline and the liveness window


@dataclass(frozen=True)
class InProgress:
    """Documents in ``in_progress`` now, and those in it longer than deadlines allow."""

    count: int
    overdue: int
    oldest_age_s: float
    allowed_s: float


@dataclass
class Look:
    """The latest values each probe found (replaced whole, never mutated in place)."""

    lags: tuple[PartitionLag, ...] = ()
    depths: tuple[TopicDepth, ...] = ()
    documents: InProgress | None = None
    reader: LagReader | None = field(default=None, repr=False)


look = Look()


def consumer_groups(settings: Settings, scanner_names: list[str]) -> dict[str, list[str]]:
    """Group id -> the topics it reads: the worker's group, and one group per scanner."""
    prefix = settings.topic_prefix
    # scan.rescans is the scanners' (their <name>.rescans groups, a backlog by design).
    read = [name for name in topics.FACT_TOPICS if name != topics.SCAN_RESCANS]
    groups = {prefix + WORKER_GROUP: [prefix + name for name in read]}
    for name in scanner_names:
        groups[prefix + name] = [prefix + topics.SCAN_REQUESTS]
    return groups


def dead_letter_topics(settings: Settings) -> list[str]:
    return [settings.topic_prefix + topics.dlq(name) for name in topics.FACT_TOPICS]


def allowed_s(settings: Settings, scanners: Mapping[str, ScannerHeartbeat]) -> float:
    """How long a document may stay in progress: the longest scanner deadline, the time it
    takes to notice a scanner is gone, and a margin for queueing."""
    deadlines = [s.deadline_s for s in scanners.values()]
    longest = max(deadlines, default=0.0) or settings.scan_deadline_s
    return longest + settings.scanner_alive_s + OVERDUE_MARGIN_S


async def in_progress(pool: Any, allowed: float) -> InProgress:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*),"
            " count(*) FILTER (WHERE updated_at < now() - make_interval(secs => %s)),"
            " COALESCE(EXTRACT(EPOCH FROM now() - min(updated_at)), 0)"
            " FROM documents WHERE process_status = 'in_progress'",
            (allowed,),
        )
        row = await cur.fetchone()
    return InProgress(int(row[0]), int(row[1]), max(0.0, float(row[2])), allowed)


def _read_kafka(reader: LagReader, names: list[str]) -> tuple[list[PartitionLag], list[TopicDepth]]:
    lags = reader.lags(consumer_groups(settings, names))
    handled_by = settings.topic_prefix + DLQ_GROUP
    return lags, reader.depths(dead_letter_topics(settings), handled_by)


async def probe_kafka() -> None:
    if look.reader is None:
        look.reader = await asyncio.to_thread(LagReader, settings)
    lags, depths = await asyncio.to_thread(_read_kafka, look.reader, sorted(registry.scanners))
    look.lags, look.depths = tuple(lags), tuple(depths)


async def probe_documents() -> None:
    allowed = allowed_s(settings, registry.scanners)
    look.documents = await in_progress(await context().pool(), allowed)


@app.timer(interval=settings.metrics_interval_s)
async def probe() -> None:
    for name, run in (("kafka", probe_kafka), ("documents", probe_documents)):
        try:
            await asyncio.wait_for(run(), timeout=30)
            PROBE_SUCCESS.labels(name).set_to_current_time()
        except Exception as exc:  # a store away: the last look stays, marked by its age
            PROBE_ERRORS.labels(name).inc()
            log.warning("%s probe failed: %s", name, exc)


class PipelineCollector(Collector):
    """The latest look, and the registry as of now, as metric families."""

    def collect(self) -> Iterator[Metric]:
        prefix = settings.topic_prefix
        yield _lag_family(look.lags, prefix)
        yield from _dlq_families(look.depths, prefix)
        yield from _document_families(look.documents)
        yield from scanner_families(registry.scanners, time.time())


def _lag_family(lags: tuple[PartitionLag, ...], prefix: str) -> Metric:
    family = GaugeMetricFamily(
        "intellidox_consumer_group_lag",
        "Messages a consumer group has not committed yet, per topic partition",
        labels=["group", "topic", "partition"],
    )
    for lag in lags:
        labels = [lag.group.removeprefix(prefix), lag.topic.removeprefix(prefix)]
        family.add_metric([*labels, str(lag.partition)], lag.lag)
    return family


def _dlq_families(depths: tuple[TopicDepth, ...], prefix: str) -> Iterator[Metric]:
    held = GaugeMetricFamily(
        "intellidox_dlq_messages", "Messages held in a dead-letter topic", labels=["topic"]
    )
    pending = GaugeMetricFamily(
        "intellidox_dlq_pending",
        "Dead letters not yet put back by `dlq replay` (all held ones when it never ran)",
        labels=["topic"],
    )
    for depth in depths:
        topic = depth.topic.removeprefix(prefix)
        held.add_metric([topic], depth.messages)
        pending.add_metric([topic], depth.pending)
    yield held
    yield pending


def _document_families(found: InProgress | None) -> Iterator[Metric]:
    gauges = (
        ("intellidox_documents_in_progress", "Documents in in_progress now", "count"),
        (
            "intellidox_documents_overdue",
            "Documents in in_progress for longer than their deadlines allow",
            "overdue",
        ),
        (
            "intellidox_documents_in_progress_oldest_age_seconds",
            "Time since the oldest in_progress document last changed",
            "oldest_age_s",
        ),
        (
            "intellidox_documents_allowed_seconds",
            "How long a document may stay in progress before it counts as overdue",
            "allowed_s",
        ),
    )
    for name, text, attribute in gauges:
        family = GaugeMetricFamily(name, text)
        if found is not None:
            family.add_metric([], getattr(found, attribute))
        yield family


def scanner_families(scanners: Mapping[str, ScannerHeartbeat], now_s: float) -> Iterator[Metric]:
    """Heartbeat age and engine versions of each scanner in the registry."""
    age = GaugeMetricFamily(
        "intellidox_scanner_heartbeat_age_seconds",
        "Time since the scanner group's latest heartbeat in the registry",
        labels=["scanner"],
    )
    info = InfoMetricFamily(
        "intellidox_scanner_engine",
        "Engine and signature versions of each scanner, from its latest heartbeat",
        labels=["scanner"],
    )
    for name, beat in sorted(scanners.items()):
        age.add_metric([name], max(0.0, now_s - registry.heard_ms(beat) / 1000))
        versions = {
            "vendor": beat.vendor,
            "engine_version": beat.engine_version,
            "signatures_version": beat.signatures_version,
        }
        info.add_metric([name], versions)
    yield age
    yield info


REGISTRY.register(PipelineCollector())
