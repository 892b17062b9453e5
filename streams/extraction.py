"""Extraction agent: read the object once, hash it, detect its type, run the extractor script.

Then hand over to the orchestrator (same process, no extra hop) so that re-extraction later
never triggers a second scan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from ops.backoff import Backoff, Rule, retrying
from ops.filetype import also_readable, detect
from ops.kafka import topic
from schemas import topics
from schemas.documents import DocsConfirmed, DocsMetadata, DocsReextract, MetaValue
from streams import metrics, orchestrator, scripts, workdir
from streams.app import app, settings, source
from streams.context import WorkerContext, context
from streams.dlq import handle_or_dead_letter
from streams.extractor import run_script
from streams.fetch import Download, download
from streams.objects import ObjectRef, is_storage_outage, object_ref

log = logging.getLogger(__name__)
OUTAGE = Backoff(attempts=None, base_s=0.2, cap_s=5.0)  # storage away: waited out
DOWNLOAD = Backoff(attempts=4, base_s=0.4, cap_s=5.0)  # no such object or version: a few tries

metadata_topic = app.topic(topic(settings, topics.DOCS_METADATA), key_type=bytes, value_type=bytes)


async def download_with_retries(
    ctx: WorkerContext, source: ObjectRef, directory: Path, size: int | None = None
) -> Download:
    """The object, retried while storage is away (an outage delays, it never fails a
    document); other errors (no such object or version) get a few tries."""

    def retried(tries: int, pause: float, exc: BaseException) -> None:
        log.warning("download of %s failed (try %d), retrying: %s", source, tries, exc)

    rules: list[Rule] = [(is_storage_outage, OUTAGE), (Exception, DOWNLOAD)]
    return await retrying(
        lambda: asyncio.to_thread(download, ctx.s3, source, directory, size), rules, retried
    )


async def extract_document(
    ctx: WorkerContext,
    document: DocsConfirmed | DocsReextract,
    script: tuple[Path, str] | None = None,
) -> DocsMetadata:
    """The docs.metadata record for one stored document (a failure is a record too).

    ``script`` is (path, version); by default the active one, read once, at the start."""
    started = time.monotonic()
    if script is None:
        await scripts.wait_loaded()
        script = ctx.active_script()
    script_path, script_version = script
    found = partial(_metadata, document, script_version, started)
    source = object_ref(ctx.settings, document)  # a bad reference is poison, not a failure
    with workdir.extraction_dir() as work:
        try:
            # The pinned size (None for documents confirmed before versions were pinned).
            size = document.file_size if source.version_id else None
            got = await download_with_retries(ctx, source, work, size)
        except Exception as exc:
            return found(failed=True, error=f"could not read the object: {exc}")
        file_type, mime = detect(got.head, got.path)
        also_types = also_readable(got.head, got.path, file_type)
        # What the script is told: free-form JSON for the sandboxed script (streams/sandbox.py).
        info = {
            "file_name": document.file_name,
            "file_size": got.size,
            "file_type": file_type,
            "mime_type": mime,
            "sha256": got.sha256,
        }
        outcome = await run_script(script_path, got.path, info, ctx.limits)
    return found(
        sha256=got.sha256,
        file_size=got.size,
        file_type=file_type,
        mime_type=mime,
        also_types=tuple(sorted(also_types)),
        meta=outcome.meta,
        error=outcome.error,
    )


def _metadata(
    document: DocsConfirmed | DocsReextract,
    script_version: str,
    started: float,
    *,
    sha256: str | None = None,
    file_size: int | None = None,
    file_type: str | None = None,
    mime_type: str | None = None,
    also_types: tuple[str, ...] = (),
    meta: dict[str, MetaValue] | None = None,
    error: str | None = None,
    failed: bool = False,
) -> DocsMetadata:
    return DocsMetadata(
        doc_id=document.doc_id,
        tenant=document.tenant,
        sha256=sha256,
        file_size=document.file_size if file_size is None else file_size,
        file_type=file_type,
        mime_type=mime_type,
        meta=meta or {},
        script_version=script_version,
        duration_ms=int((time.monotonic() - started) * 1000),
        error=error,
        failed=failed,
        at=datetime.now(UTC),
        also_types=also_types,
    )


def _log_extracted(record: DocsMetadata) -> None:
    fields = {
        "sha256": record.sha256,
        "file_type": record.file_type,
        "file_size": record.file_size,
        "script_version": record.script_version,
        "duration_ms": record.duration_ms,
    }
    if record.failed:
        log.warning("extraction failed: %s", record.error, extra=fields)
    else:
        log.info("extracted: %s", record.file_type, extra={**fields, "error": record.error})


@app.agent(source(topics.DOCS_CONFIRMED), concurrency=4)
async def extraction_agent(stream: Any) -> None:
    async for event in stream.events():
        await handle_or_dead_letter(
            app,
            event,
            DocsConfirmed,
            lambda record: handle_confirmed(context(), record),
            stage="extraction",
        )


def _already_fanned_out(doc_id: str) -> bool:
    from streams import tracker  # the tracker's table lives on this document's partition too

    state = tracker.load(doc_id)
    return state is not None and state.expected is not None


async def handle_confirmed(ctx: WorkerContext, confirmed: DocsConfirmed) -> None:
    if _already_fanned_out(confirmed.doc_id):
        # Redelivered after a worker crash (at-least-once): the tracker's table, restored from
        # its changelog, already holds this document's scan request, so extracting and fanning
        # out again would only make every scanner scan it twice.
        metrics.CONFIRMATIONS_REPLAYED.inc()
        log.info("confirmation redelivered; already fanned out, skipped")
        return
    record = await extract_document(ctx, confirmed)
    await metadata_topic.send(key=record.kafka_key, value=record.encode())
    _log_extracted(record)
    metrics.observe_extraction(record.failed, record.error, record.duration_ms / 1000)
    if not record.failed:
        await orchestrator.fan_out(ctx, confirmed, record)
