"""The REST API: request an upload, confirm it, read metadata and verdicts."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from gateway import db, objects, ratelimit, store, uploads
from gateway.auth import sign_events_token
from gateway.errors import fail, json_body
from gateway.state import APP, tenant_of
from gateway.validation import Invalid, parse_upload_request
from ops.ids import created_at_of, parse_doc_id, uuid7
from ops.kafka import topic
from schemas import topics
from schemas.documents import DocsConfirmed, DocsRequested, DocsStatus

routes = web.RouteTableDef()
log = logging.getLogger(__name__)


def _doc_id(request: web.Request) -> uuid.UUID:
    try:
        return parse_doc_id(request.match_info["doc_id"])
    except ValueError as exc:
        fail(400, str(exc))


def _urls(request: web.Request, doc_id: str, tenant: str) -> dict[str, str]:
    state = request.app[APP]
    base = f"{state.settings.gateway_url}/docs/{doc_id}"
    token = sign_events_token(
        state.settings.signing_secret, doc_id, tenant, state.settings.events_token_ttl_s
    )
    return {
        "document": f"{base}/meta",
        "meta": f"{base}/meta",
        "scan_results": f"{base}/scan-results",
        "events": f"{base}/events?token={token}",
        "content": f"{base}/content",
    }


async def _load(request: web.Request, cached: bool = True) -> tuple[dict[str, Any], str]:
    tenant = await tenant_of(request)
    doc_id = _doc_id(request)
    state = request.app[APP]
    doc = state.cache.get(tenant, str(doc_id)) if cached else None
    if doc is None:
        doc = await state.cache.single_flight(
            tenant, str(doc_id), lambda: _read(state, tenant, doc_id)
        )
        if doc is None:  # another tenant's document looks exactly like a missing one
            fail(404, f"document {doc_id} not found")
        state.cache.put(doc, state.hub.quiet_for(str(doc_id)))
    return doc, tenant


async def _read(state: Any, tenant: str, doc_id: uuid.UUID) -> dict[str, Any] | None:
    return await db.read(state.pool, lambda conn: store.get_document(conn, tenant, doc_id))


@routes.post("/docs/request-upload")
async def request_upload(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    state = request.app[APP]
    try:
        req = parse_upload_request(await json_body(request), state.settings.max_file_size)
    except Invalid as exc:
        fail(exc.status, str(exc))
    if req.sha256:
        reused = await _reusable(request, tenant, req.sha256)
        if reused is not None:
            return reused
    guard = await ratelimit.upload_guard(request, tenant)  # 429 at the uploads-in-progress limit
    doc_id = uuid7()
    created_at = created_at_of(doc_id)
    bucket = uploads.bucket_of(state.settings, created_at)
    plan = await asyncio.to_thread(
        _plan, state, bucket, str(doc_id), req.file_size, req.content_type
    )
    doc = {
        "id": doc_id,
        "tenant": tenant,
        "file_name": req.file_name,
        "file_size": req.file_size,
        "content_type": req.content_type,
        "sha256": req.sha256,
        "created_at": created_at,
        "upload_id": plan.get("upload_id"),
    }
    record = DocsRequested(
        str(doc_id), tenant, req.file_name, req.file_size, req.content_type, req.sha256, created_at
    )
    event = _event(state, record)
    await db.write(state.pool, lambda conn: store.insert_document(conn, doc, event, guard))
    body = {
        "id": str(doc_id),
        "file_name": req.file_name,
        "file_size": req.file_size,
        "status": "requested",
        "upload": plan,
        "urls": _urls(request, str(doc_id), tenant),
    }
    log.info("upload requested", extra=_fields(doc_id, tenant, "request", req.file_size))
    return web.json_response(body, status=201)


def _fields(doc_id: uuid.UUID, tenant: str, stage: str, size: int) -> dict[str, Any]:
    return {"stage": stage, "doc_id": str(doc_id), "tenant": tenant, "file_size": size}


def _plan(state: Any, bucket: str, key: str, size: int, content_type: str | None) -> dict[str, Any]:
    if size > state.settings.multipart_threshold:
        return uploads.multipart_plan(state.s3, state.settings, bucket, key, size, content_type)
    return uploads.single_put_plan(state.s3, state.settings, bucket, key, size, content_type)


def _event(state: Any, record: DocsRequested | DocsConfirmed | DocsStatus) -> store.OutboxEvent:
    """The outbox row that publishes ``record`` on its topic (schemas/topics.py)."""
    name = topics.topic_for(record).name
    return store.OutboxEvent(topic(state.settings, name), record.doc_id, record.encode())


async def _reusable(request: web.Request, tenant: str, sha256: str) -> web.Response | None:
    state = request.app[APP]
    window = timedelta(days=state.settings.reuse_window_days)
    now = datetime.now(UTC)
    doc = await db.read(
        state.pool, lambda conn: store.find_reusable(conn, tenant, sha256, window, now)
    )
    if doc is None:
        return None
    doc_id = str(doc["id"])
    body = {
        "id": doc_id,
        "duplicate_of": doc_id,
        "file_name": doc["file_name"],
        "status": doc["process_status"],
        "scanned_at": doc["updated_at"].isoformat(),
        "urls": _urls(request, doc_id, tenant),
    }
    return web.json_response(body, status=200)


@routes.post("/docs/{doc_id}/confirm-upload")
async def confirm_upload(request: web.Request) -> web.Response:
    doc, tenant = await _load(request, cached=False)
    if doc["process_status"] == "rejected":
        fail(422, "this upload was rejected: " + str(doc["meta_data"].get("rejected_reason")))
    if pending_confirm(doc):
        await _confirm(request, doc, tenant)
        request.app[APP].cache.evict(str(doc["id"]))
    # The pipeline has it from here; a confirm after the end says how it ended.
    finished = doc["process_status"] in ("done", "failed")
    status = doc["process_status"] if finished else "in_progress"
    body = {
        "id": str(doc["id"]),
        "file_name": doc["file_name"],
        "status": status,
        "urls": _urls(request, str(doc["id"]), tenant),
    }
    return web.json_response(body, status=202)


async def _confirm(request: web.Request, doc: dict[str, Any], tenant: str) -> None:
    state = request.app[APP]
    bucket, key = uploads.bucket_of(state.settings, doc["created_at"]), str(doc["id"])
    try:
        pin = await asyncio.to_thread(
            objects.pin_upload, state.s3, state.settings, bucket, key, doc
        )
    except objects.StorageNotVersioned as exc:
        fail(503, str(exc))
    if pin is None:
        fail(409, "not uploaded yet: PUT the file to the upload URL first")
    now = datetime.now(UTC)
    if pin.size != doc["file_size"] or pin.size > state.settings.max_file_size:
        reason = f"uploaded size {pin.size} differs from the declared {doc['file_size']} bytes"
        if pin.size > state.settings.max_file_size:
            reason = f"uploaded size {pin.size} is over the 1 GiB limit"
        await _reject(request, doc, tenant, reason, now)
        state.cache.evict(str(doc["id"]))
        fail(422, reason)

    def events(found: store.Confirmation) -> list[store.OutboxEvent]:
        record = DocsConfirmed(
            doc_id=str(doc["id"]),
            tenant=tenant,
            file_name=doc["file_name"],
            file_size=pin.size,
            content_type=doc["content_type"],
            bucket=pin.bucket,
            key=pin.key,
            created_at=doc["created_at"],
            uploaded_at=found.uploaded_at,
            version_id=pin.version_id,
        )
        confirmed = _event(state, record)
        if not found.announce_uploaded:  # a storage event announced it already
            return [confirmed]
        # The gateway knows the upload is in: it announces that status itself (the tracker
        # takes over from in_progress), which saves a hop on the way to the browser.
        uploaded = _status_event(state, doc["id"], tenant, "uploaded", None, found.uploaded_at)
        return [confirmed, uploaded]

    await db.write(state.pool, lambda conn: store.mark_confirmed(conn, doc, pin, now, events))
    log.info("upload confirmed", extra=_fields(doc["id"], tenant, "confirm", pin.size))


def pending_confirm(doc: dict[str, Any]) -> bool:
    """Confirm still has work: nothing is pinned yet, whether or not a storage event has
    already marked the bytes 'uploaded'."""
    return doc["process_status"] in ("requested", "uploaded") and not doc.get("object_version")


def _status_event(
    state: Any, doc_id: uuid.UUID, tenant: str, status: str, reason: str | None, now: datetime
) -> store.OutboxEvent:
    return _event(state, DocsStatus(str(doc_id), tenant, status, reason, None, now))


async def _reject(
    request: web.Request, doc: dict[str, Any], tenant: str, reason: str, now: datetime
) -> None:
    state = request.app[APP]
    event = _status_event(state, doc["id"], tenant, "rejected", reason, now)
    await db.write(state.pool, lambda conn: store.mark_rejected(conn, doc, reason, now, event))
    fields = _fields(doc["id"], tenant, "confirm", doc["file_size"])
    log.warning("upload rejected: %s", reason, extra=fields)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@routes.get("/docs/{doc_id}/content")
async def get_content(request: web.Request) -> web.Response:
    """302 to a short-lived GET of the pinned bytes (the owning tenant only)."""
    doc, _ = await _load(request, cached=False)
    if not doc.get("object_version"):
        fail(409, f"document {doc['id']} has no confirmed content (status {doc['process_status']})")
    state = request.app[APP]
    bucket = uploads.bucket_of(state.settings, doc["created_at"])
    url = await asyncio.to_thread(objects.content_url, state.s3, state.settings, bucket, doc)
    raise web.HTTPFound(url, headers={"Cache-Control": "no-store"})


@routes.get("/docs/{doc_id}/meta")
async def get_meta(request: web.Request) -> web.Response:
    doc, tenant = await _load(request)
    # urls.events carries a fresh token: the way to resume a stream after one expired.
    return web.json_response({**document_view(doc), "urls": _urls(request, str(doc["id"]), tenant)})


def document_view(doc: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (doc["meta_data"] or {}).items() if not k.startswith("_")}
    return {
        "id": str(doc["id"]),
        "file_name": doc["file_name"],
        "file_size": doc["file_size"],
        "file_type": doc["file_type"],
        "content_type": doc["content_type"],
        "sha256": doc["sha256"],
        "status": doc["process_status"],
        "created_at": _iso(doc["created_at"]),
        "uploaded_at": _iso(doc["uploaded_at"]),
        "updated_at": _iso(doc["updated_at"]),
        "meta": meta,
        "script_version": doc["script_version"],
    }
