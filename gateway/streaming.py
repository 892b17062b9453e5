"""``GET /docs/{id}/scan-results`` and ``GET /docs/{id}/events`` (server-sent events).

A stream sends the document's state, then its facts as the hub hears them, in the order a
client must see them (:class:`gateway.sse.Sequencer`), and ends with ``done`` once the REST
API says the same (:mod:`gateway.readafter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web

from gateway import db, store
from gateway.auth import verify_events_token
from gateway.errors import UNAVAILABLE, fail
from gateway.history import with_earlier
from gateway.hub import Inbox
from gateway.ratelimit import admit_events
from gateway.readafter import (
    WATCH,
    Seen,
    caught_up,
    caught_up_view,
)
from gateway.routes import _doc_id, _load, document_view, routes
from gateway.sse import (
    Cursor,
    Fact,
    Sequencer,
    encode_event,
    heartbeat,
    retry_hint,
)
from gateway.state import APP, query_value, tenant_of
from gateway.verdicts import read_verdicts, summary, verdict_view
from schemas.enums import STATUS_RANK, TERMINAL

log = logging.getLogger(__name__)
EVENT_STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # no proxy buffering: each event goes out as it comes
}
DONE_GRACE_S = 3.0
ORDER_WAIT_S = 2.0  # verdicts wait this long at most for the in_progress status


@routes.get("/docs/{doc_id}/scan-results")
async def scan_results(request: web.Request) -> web.Response:
    doc, _ = await _load(request)
    state = request.app[APP]
    rows = await read_verdicts(state, doc["id"])
    status = visible_status(doc["process_status"], doc.get("expected_scanners"), len(rows))
    body: dict[str, Any] = {
        "id": str(doc["id"]),
        "file_name": doc["file_name"],
        "status": status,
        "summary": summary(rows, doc.get("expected_scanners")),
        "scan_results": await with_earlier(state, doc["id"], rows),
    }
    if status not in TERMINAL:
        url = f"{state.settings.gateway_url}/docs/{doc['id']}/scan-results"
        body["next"] = {"url": url, "after_ms": 1000}
    return web.json_response(body)


def visible_status(status: str, expected: int | None, scanned: int) -> str:
    """Statuses and verdicts are projected by separate writers: until every expected verdict
    is readable, a finished document still shows as in progress (so 'done' means complete)."""
    if status == "done" and expected is not None and scanned < expected:
        return "in_progress"
    return status


async def _events_tenant(request: web.Request) -> tuple[str, uuid.UUID]:
    """Who is asking, checked before anything about the id is said (401 before 400)."""
    token = query_value(request, "token")
    if token is None:
        tenant = await tenant_of(request)
        return tenant, _doc_id(request)
    raw_id = request.match_info["doc_id"]
    secret = request.app[APP].settings.signing_secret
    owner = verify_events_token(secret, raw_id, token)
    if owner is None:
        fail(401, "the events token is invalid or expired; fetch a fresh URL from GET meta")
    return owner, _doc_id(request)


async def _admitted(request: web.Request) -> tuple[str, uuid.UUID]:
    """Who asks (401 otherwise), counted against their tenant's stream rate (429)."""
    tenant, doc_id = await _events_tenant(request)
    await admit_events(request, tenant)
    return tenant, doc_id


@routes.get("/docs/{doc_id}/events")
async def events(request: web.Request) -> web.StreamResponse:
    # This frame lives as long as the stream (hours, 10,000 per gateway): it keeps few locals,
    # and the opening's reads happen in a frame of their own that is gone once it is open.
    tenant, doc_id = await _admitted(request)
    hub, key = request.app[APP].hub, str(doc_id)
    queue = hub.subscribe(key)  # before the reads: a fact that comes meanwhile is kept
    try:
        stream = await _open_stream(request, tenant, doc_id)
        try:
            await stream.follow(queue)
        except UNAVAILABLE as exc:
            # Headers are sent: end the stream; the client resumes from its Last-Event-ID.
            log.warning("event stream of %s ended: a store is unavailable: %s", doc_id, exc)
        return stream.response
    finally:
        hub.unsubscribe(key, queue)


async def start_event_stream(request: web.Request) -> web.StreamResponse:
    """Send the status line and headers of an event stream.  The response then forgets its
    headers: they are sent, and kept they were ~0.7 KB for each of 10,000 idle streams."""
    response = web.StreamResponse(headers=EVENT_STREAM_HEADERS)
    await response.prepare(request)
    response.headers.clear()
    return response


async def _open_stream(request: web.Request, tenant: str, doc_id: uuid.UUID) -> EventStream:
    """Read the document, send the headers and the snapshot, then what the hub heard lately.
    Everything that can fail is read before the headers go out: a store away is then an
    honest 503 with Retry-After, never a second response written into a started stream."""
    state = request.app[APP]
    doc = await db.read(state.pool, lambda conn: store.get_document(conn, tenant, doc_id))
    if doc is None:
        fail(404, f"document {doc_id} not found")
    verdicts = await read_verdicts(state, doc_id)
    response = await start_event_stream(request)
    cursor = Cursor.parse(
        request.headers.get("Last-Event-ID") or query_value(request, "last_event_id")
    )
    stream = EventStream(response, cursor, partial(request.app[WATCH].wait, tenant, doc_id))
    await stream.send_snapshot(doc, verdicts)
    for fact in state.hub.recent(str(doc_id)):
        await stream.send(fact)
    return stream


Projections = tuple[dict[str, Any] | None, list[dict[str, Any]]]


class EventStream:
    """One client's stream: orders facts, filters by the cursor, ends with ``done``.  An idle
    stream may be held for hours, 10,000 of them by one gateway: it keeps little, in slots."""

    __slots__ = (
        *("response", "cursor", "wait_for_projections", "status", "expected"),
        *("sequencer", "seen", "snapshot", "held_since"),
    )

    def __init__(
        self,
        response: web.StreamResponse,
        cursor: Cursor,
        wait_for_projections: Callable[[Seen], Awaitable[bool]],
    ) -> None:
        self.response = response
        self.cursor = cursor
        self.wait_for_projections = wait_for_projections
        self.status: str | None = None
        self.expected: int | None = None
        self.sequencer = Sequencer()
        self.seen = Seen()
        self.snapshot: Projections = (None, [])
        self.held_since: float | None = None

    async def send_snapshot(self, doc: dict[str, Any], verdicts: list[dict[str, Any]]) -> None:
        self.snapshot = (caught_up_view(doc), verdicts)
        await self.response.write(retry_hint(1000))
        self.expected = doc.get("expected_scanners")
        view = document_view(doc)
        await self.send(Fact("status", -1, {**view, "doc_id": view["id"], "snapshot": True}))
        if doc.get("meta_offset") is not None:
            meta = {
                "doc_id": view["id"],
                "meta": view["meta"],
                "sha256": doc["sha256"],
                "file_type": doc["file_type"],
                "script_version": doc["script_version"],
            }
            await self.send(Fact("meta", int(doc["meta_offset"]), meta))
        for row in sorted(verdicts, key=_offset_of):
            await self.send(Fact("verdict", _offset_of(row), row))

    async def send(self, fact: Fact) -> None:
        if fact.kind == "status":
            self._note_status(fact.data)
        for ready in self.sequencer.accept(fact):
            await self._write(ready)
        if not self.sequencer.held:
            self.held_since = None
        elif self.held_since is None:
            self.held_since = asyncio.get_running_loop().time()

    async def _write(self, fact: Fact) -> None:
        self.seen.note(fact.kind, fact.offset, fact.data)
        after = fact.advances(self.cursor)
        if after is None:
            return
        self.cursor = after
        data = verdict_view(fact.data) if fact.kind == "verdict" else fact.data
        await self.response.write(encode_event(fact.kind, data, str(after)))

    def _note_status(self, data: dict[str, Any]) -> None:
        status = str(data.get("status"))
        if STATUS_RANK.get(status, -1) < STATUS_RANK.get(self.status or "", -1):
            return  # an older status replayed from the recent buffer
        self.status = status
        if data.get("expected") is not None:
            self.expected = int(data["expected"])

    def _complete(self) -> bool:
        return self.status in TERMINAL and len(self.seen.verdicts) >= (self.expected or 0)

    def _deadline(self, grace_until: float | None) -> float | None:
        """When this stream must act with no fact come: the end of its grace after a final
        status, or a held verdict's wait for its status.  None when idle: the hub's
        heartbeat nudges it, no timer of its own."""
        deadlines = [grace_until] if grace_until is not None else []
        if self.held_since is not None:
            deadlines.append(self.held_since + ORDER_WAIT_S)
        return min(deadlines, default=None)

    async def _quiet(self, now: float) -> None:
        """Nothing came: release verdicts that waited too long for their status (the order
        is best effort when a status is lost), else keep the connection alive."""
        if self.held_since is not None and now >= self.held_since + ORDER_WAIT_S:
            self.held_since = None
            for fact in self.sequencer.release():
                await self._write(fact)
            return
        await self.response.write(heartbeat())

    async def follow(self, queue: Inbox) -> None:
        loop = asyncio.get_running_loop()
        grace_until: float | None = None
        try:
            while not self._complete():
                if self.status in TERMINAL:
                    grace_until = grace_until or loop.time() + DONE_GRACE_S
                    if loop.time() >= grace_until:
                        break
                deadline = self._deadline(grace_until)
                if deadline is None:
                    while not queue.ready():
                        await queue.wait()  # a fact, or the hub's heartbeat nudge
                else:
                    await _ready_or_deadline(queue, deadline)
                fact = queue.take()
                if fact is None:
                    await self._quiet(loop.time())
                else:
                    await self.send(fact)
            await self._done()
        except ConnectionResetError:
            pass  # the client left

    async def _done(self) -> None:
        """``done``, once the projections say what this stream said (read-after-done)."""
        if not caught_up(*self.snapshot, self.seen):
            await self.wait_for_projections(self.seen)
        done = {
            "status": self.status,
            "scanned": len(self.seen.verdicts),
            "expected": self.expected,
        }
        await self.response.write(encode_event("done", done, str(self.cursor)))


async def _ready_or_deadline(queue: Inbox, deadline: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(deadline):  # a timeout, not wait_for: no task per wait
            while not queue.ready():
                await queue.wait()


def _offset_of(row: dict[str, Any]) -> int:
    offset = row.get("kafka_offset")
    return -1 if offset is None else int(offset)
