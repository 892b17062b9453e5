"""Read-after-done: an event stream says ``done`` only once the REST API says so too.

The gateway hears facts from Kafka before the materializer has projected them, so a client
that reads ``scan-results`` the moment its stream says ``done`` could find the document still
in progress with a verdict missing.  Before ``done``, a stream therefore waits until the
projections hold everything it told its client: the status (or a later one), the metadata
offset, and every scanner's verdict (a real one where the stream sent a real one, never the
``timeout`` it replaced).  It reads the projections themselves, the same rows REST serves, so
the guarantee holds whichever gateway the client reads from and needs no bookkeeping from the
writers.  The wait is bounded: a projection that cannot catch up (its store away) delays
``done`` by :data:`WAIT_S` at most.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway import db, store
from gateway.state import GatewayState
from gateway.verdicts import read_verdict_classes
from schemas.enums import status_rank

log = logging.getLogger(__name__)
POLL_S = 0.04  # one read of every waiting document per tick
WAIT_S = 15.0
Row = dict[str, Any]


@dataclass(slots=True)
class Seen:
    """What one stream has told (or knows its client has) about a document."""

    status: str = "requested"
    meta_offset: int = -1
    verdicts: dict[str, str] = field(default_factory=dict)  # scanner -> verdict class

    def note(self, kind: str, offset: int, data: dict[str, Any]) -> None:
        if kind == "status" and _rank(data.get("status")) > _rank(self.status):
            self.status = str(data["status"])
        elif kind == "meta":
            self.meta_offset = max(self.meta_offset, offset)
        elif kind == "verdict":
            self.verdicts[str(data.get("scanner"))] = str(data.get("verdict"))


def _rank(status: Any) -> int:
    return status_rank(status)


def caught_up_view(doc: Row) -> Row:
    """Only the fields of a document row that :func:`caught_up` reads: a stream keeps its
    snapshot until ``done``, and an idle one may be held for hours."""
    return {key: doc.get(key) for key in store.PROGRESS_COLUMNS}


def document_caught_up(doc: Row | None, seen: Seen) -> bool:
    """Does the document's row say the status and metadata ``seen`` says?"""
    if doc is None or _rank(doc["process_status"]) < _rank(seen.status):
        return False
    meta_offset = doc.get("meta_offset")
    return seen.meta_offset < 0 or (meta_offset is not None and meta_offset >= seen.meta_offset)


def caught_up(doc: Row | None, rows: list[Row], seen: Seen) -> bool:
    """Do these projected rows say everything ``seen`` says, as REST would show it?"""
    if doc is None or not document_caught_up(doc, seen):
        return False
    expected = doc.get("expected_scanners")
    if doc["process_status"] == "done" and expected is not None and len(rows) < expected:
        return False  # scan-results would still say in_progress
    projected = {str(r["scanner"]): str(r["verdict"]) for r in rows}
    return all(
        scanner in projected and (verdict == "timeout" or projected[scanner] != "timeout")
        for scanner, verdict in seen.verdicts.items()
    )


@dataclass(eq=False)
class _Waiter:
    tenant: str
    doc_id: uuid.UUID
    seen: Seen
    caught_up: asyncio.Future[bool]


class ProjectionWatch:
    """Read-after-done for every stream of this gateway at once.  A stream that has said all
    but ``done`` waits here; one poller reads the rows of every waiting document in one query
    (and the verdicts of those whose row caught up), instead of each stream polling on its
    own: under load dozens wait at once, and their polls were ~7 % of the gateway's CPU and
    as many Postgres queries.  A wait is bounded: a projection that cannot catch up (its
    store away) delays ``done`` by ``wait_s`` at most."""

    def __init__(self, state: GatewayState, poll_s: float = POLL_S) -> None:
        self.state = state
        self.poll_s = poll_s
        self._waiting: list[_Waiter] = []
        self._poller: asyncio.Task[None] | None = None

    async def wait(
        self, tenant: str, doc_id: uuid.UUID, seen: Seen, wait_s: float = WAIT_S
    ) -> bool:
        """True once the projections say what ``seen`` says; False after ``wait_s``."""
        waiter = _Waiter(tenant, doc_id, seen, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            async with asyncio.timeout(wait_s):
                return await waiter.caught_up
        except TimeoutError:
            return False
        finally:
            self._waiting.remove(waiter)

    async def _poll(self) -> None:
        warned = False
        while self._waiting:
            try:
                await self.check([w for w in self._waiting if not w.caught_up.done()])
                warned = False
            except Exception as exc:  # a store away: the waits run out, done comes anyway
                if not warned:  # once per outage: every poll would log otherwise
                    log.warning("projections unreadable while streams wait for done: %s", exc)
                    warned = True
            await asyncio.sleep(self.poll_s)

    async def check(self, waiters: list[_Waiter]) -> None:
        """One read of these documents' rows; the verdicts only of those whose row caught up
        (the status is what lags: it is the last fact of all)."""
        if not waiters:
            return
        keys = [(w.tenant, w.doc_id) for w in waiters]
        rows = await db.read(self.state.pool, lambda conn: store.get_progress_many(conn, keys))
        ready = [w for w in waiters if document_caught_up(rows.get((w.tenant, w.doc_id)), w.seen)]
        if not ready:
            return
        classes = await read_verdict_classes(self.state, list({w.doc_id for w in ready}))
        for w in ready:
            row = rows[(w.tenant, w.doc_id)]
            if caught_up(row, classes[w.doc_id], w.seen) and not w.caught_up.done():
                w.caught_up.set_result(True)


WATCH = web.AppKey("intellidox_projection_watch", ProjectionWatch)
