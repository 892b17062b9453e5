"""Orchestrator: reuse earlier verdicts for the same bytes, or fan out one scan request.

Within the reuse window, conclusive verdicts (not timeout or error) of this tenant's newest
finished document with the same SHA-256 are copied, each marked as reused and keeping the
time of the original scan.  Scanners without such a verdict are asked to scan.  A verdict
made with signatures older than the engine's current ones is reused only while no newer one
exists, and then marked ``signatures_stale``.  Scanners that do not accept the file type are
answered ``unsupported`` here instead (:mod:`streams.fanout`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.kafka import topic
from schemas import topics
from schemas.documents import DocsConfirmed, DocsMetadata
from schemas.record import at_ms
from schemas.records import ScannerHeartbeat, ScanVerdict
from schemas.scans import ExpectedScanner, ScanRequest
from streams import fanout, metrics, registry
from streams.app import app, settings
from streams.context import WorkerContext
from streams.objects import object_ref
from streams.rescan.plan import choose_reusable, settled
from streams.sinks import cassandra as cassandra_sink

log = logging.getLogger(__name__)
REUSE_CANDIDATES = 5  # same-content documents read at most, looking for current signatures
URL_MARGIN_S = 120

requests_topic = app.topic(topic(settings, topics.SCAN_REQUESTS), key_type=bytes, value_type=bytes)
verdicts_topic = app.topic(topic(settings, topics.SCAN_VERDICTS), key_type=bytes, value_type=bytes)


async def find_reusable(
    ctx: WorkerContext, doc_id: str, tenant: str, sha256: str
) -> list[dict[str, Any]]:
    """Reusable verdict rows of the newest finished same-content documents, or [].

    Per scanner, a verdict made with the engine's current signatures (its latest heartbeat)
    wins; when none exists yet, the newest is reused marked ``signatures_stale`` (a rescan is
    on its way: streams/rescan/).  Older documents are read only while a pick is stale."""
    window = timedelta(days=ctx.settings.reuse_window_days)
    async with (await ctx.pool()).connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM documents WHERE tenant = %s AND sha256 = %s AND id <> %s"
            " AND process_status = 'done' AND updated_at >= %s ORDER BY updated_at DESC LIMIT %s",
            (tenant, sha256, uuid.UUID(doc_id), datetime.now(UTC) - window, REUSE_CANDIDATES),
        )
        found = [row[0] for row in await cur.fetchall()]
    current = {name: beat.signatures_version for name, beat in registry.scanners.items()}
    docs: list[list[dict[str, Any]]] = []
    chosen: list[tuple[Mapping[str, Any], bool]] = []
    for candidate in found:
        docs.append(await asyncio.to_thread(_verdict_rows, ctx, candidate))
        chosen = choose_reusable(docs, current)
        if settled(chosen):
            break
    return [{**row, "signatures_stale": stale} for row, stale in chosen]


def _verdict_rows(ctx: WorkerContext, doc_id: uuid.UUID) -> list[dict[str, Any]]:
    cassandra = ctx.cassandra()
    query = cassandra.prepared(
        f"SELECT * FROM {ctx.settings.cassandra.keyspace}.verdicts WHERE doc_id = ?"
    )
    return [dict(r) for r in cassandra.session.execute(query, (doc_id,))]


def reused_verdict(row: dict[str, Any], doc_id: str, tenant: str) -> ScanVerdict:
    """An earlier verdict on the same bytes, copied to this document (marked as reused).
    Every field of the original is kept (the sink reads it back), so a field added to
    verdicts is reused with no change here."""
    original = cassandra_sink.verdict_of(row)
    reused_from = original.reused_from or original.doc_id  # the document first scanned
    return replace(original, doc_id=doc_id, tenant=tenant, reused_from=reused_from)


def scan_request(
    confirmed: DocsConfirmed,
    metadata: DocsMetadata,
    scanners: list[ScannerHeartbeat],
    reused: list[ScanVerdict],
    url: str,
    now_ms: int,
    url_ttl_s: float,
    unsupported: Sequence[ScanVerdict] = (),
) -> ScanRequest:
    deadlines = tuple(
        ExpectedScanner(s.name, at_ms(now_ms + int(s.deadline_s * 1000))) for s in scanners
    )
    return ScanRequest(
        doc_id=confirmed.doc_id,
        tenant=confirmed.tenant,
        file_name=confirmed.file_name,
        file_size=metadata.file_size,
        file_type=metadata.file_type,
        content_type=confirmed.content_type,
        sha256=metadata.sha256 or "",  # set: fan-out follows only an extraction that read it
        download_url=url,
        url_expires_at=at_ms(now_ms + int(url_ttl_s * 1000)),
        scanners=deadlines,
        reused=tuple(r.scanner for r in reused),
        reused_from=reused[0].reused_from if reused else None,
        requested_at=at_ms(now_ms),
        unsupported=tuple(v.scanner for v in unsupported),
    )


async def live_scanners(ctx: WorkerContext) -> list[ScannerHeartbeat]:
    """The live scanners, once the registry can be trusted to say so.

    A view that is stale (Kafka away, history still loading) or silent (no heartbeat at all
    for two heartbeat intervals: right after an outage, before the queued beats arrive) would
    fan out to too few scanners, or none, and finish the document with verdicts missing, which
    is a lie.  So wait: an outage delays documents, it never cuts their scan short."""
    silent_ms = 2 * ctx.settings.scanner_heartbeat_s * 1000 + registry.STALE_MS
    waited = 0
    while True:
        now_ms = int(time.time() * 1000)
        view = await registry.liveness(now_ms)
        newest = max((registry.heard_ms(s) for s in registry.scanners.values()), default=0)
        if view.fresh and now_ms - newest <= silent_ms:
            return registry.alive(now_ms / 1000)
        if waited % 20 == 0:
            log.warning("scanner registry stale or silent; holding fan-out until it is not")
        waited += 1
        await asyncio.sleep(0.5)


async def fan_out(ctx: WorkerContext, confirmed: DocsConfirmed, metadata: DocsMetadata) -> None:
    doc_id, tenant = confirmed.doc_id, confirmed.tenant
    found = [
        reused_verdict(r, doc_id, tenant)
        for r in await find_reusable(ctx, doc_id, tenant, metadata.sha256 or "")
    ]
    live = await live_scanners(ctx)
    # Scanners that do not accept the file type are answered here, not asked (no download).
    decided = fanout.plan(
        live, found, metadata.file_type, doc_id, tenant, datetime.now(UTC), metadata.also_types
    )
    scanners, reused, unsupported = list(decided.ask), list(decided.reused), decided.unsupported
    now_ms = int(time.time() * 1000)
    longest_s = max((s.deadline_s for s in scanners), default=0) + URL_MARGIN_S
    # Valid long enough for a request that waited out a pipeline outage in Kafka; bound to
    # the pinned version, so it can only ever fetch the bytes that were confirmed.
    ttl_s = max(longest_s, ctx.settings.scan_url_ttl_s)
    source = object_ref(ctx.settings, confirmed)
    url = ctx.s3.generate_presigned_url(
        "get_object", Params=source.get_params(), ExpiresIn=int(ttl_s)
    )
    for verdict in [*reused, *unsupported]:
        await verdicts_topic.send(key=verdict.kafka_key, value=verdict.encode())
    request = scan_request(confirmed, metadata, scanners, reused, url, now_ms, ttl_s, unsupported)
    await requests_topic.send(key=request.kafka_key, value=request.encode())
    metrics.SCAN_REQUESTS.inc()
    log.info(
        "fanned out to %d scanner(s), %d verdict(s) reused, %d unsupported",
        len(scanners),
        len(reused),
        len(unsupported),
        extra={
            "stage": "fan-out",
            "scanners": [s.name for s in scanners],
            "reused": [r.scanner for r in reused],
            "unsupported": list(request.unsupported),
            "reused_from": request.reused_from,
        },
    )
    for verdict in reused:
        metrics.VERDICTS_REUSED.labels(verdict.scanner).inc()
    for verdict in unsupported:
        metrics.VERDICTS_UNSUPPORTED.labels(verdict.scanner).inc()
