"""Re-extraction: run a script again on a stored document, without scanning it again.

``intellidox extractor reextract`` (or the admin API) writes one ``docs.reextract`` request per
document; this agent extracts with the requested version (or the active one) and writes a new
``docs.metadata`` record.  The Postgres sink keeps the record with the latest offset, so the
projection follows.  An object that cannot be read any more leaves the old metadata as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from schemas import topics
from schemas.documents import DocsReextract
from streams import metrics, scripts
from streams.app import app, source
from streams.context import WorkerContext, context
from streams.dlq import handle_or_dead_letter
from streams.extraction import extract_document, metadata_topic

log = logging.getLogger(__name__)


@app.agent(source(topics.DOCS_REEXTRACT), concurrency=2)
async def reextraction_agent(stream: Any) -> None:
    async for event in stream.events():
        await handle_or_dead_letter(
            app,
            event,
            DocsReextract,
            lambda record: handle_reextract(context(), record),
            stage="reextraction",
        )


async def requested_script(ctx: WorkerContext, request: DocsReextract) -> tuple[Path, str] | None:
    """The script a request names, or None for the active one."""
    if request.script_version is None:
        return None
    return await scripts.script_of(
        ctx, request.script_version, request.script_key, request.script_sha256
    )


async def handle_reextract(ctx: WorkerContext, request: DocsReextract) -> None:
    record = await extract_document(ctx, request, await requested_script(ctx, request))
    if record.failed:
        log.warning("re-extraction skipped: %s", record.error)
        metrics.REEXTRACTIONS_SKIPPED.inc()
        return
    await metadata_topic.send(key=record.kafka_key, value=record.encode())
    metrics.REEXTRACTED.inc()
    log.info("re-extracted with script %s", record.script_version)
