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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway import db, store
from gateway.state import GatewayState
from gateway.verdicts import read_verdict_classes, read_verdicts
from schemas.enums import status_rank

log = logging.getLogger(__name__)
POLL_S = 0.025  # the first pause; each next one doubles, up to POLL_MAX_S
POLL_MAX_S = 0.25
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


async def read_projections(
    state: GatewayState, tenant: str, doc_id: uuid.UUID
) -> tuple[Row | None, list[Row]]:
    """The document's row and its verdict rows (a stream's snapshot)."""
    doc = await db.read(state.pool, lambda conn: store.get_document(conn, tenant, doc_id))
    return doc, await read_verdicts(state, doc_id)


async def read_progress(
    state: GatewayState, tenant: str, doc_id: uuid.UUID, seen: Seen
) -> tuple[Row | None, list[Row]]:
    """What :func:`caught_up` compares, and no more: the row's progress columns and each
    verdict's scanner and class, the verdicts read only once the row has caught up (the
    status is what lags: it is the last fact of all)."""
    doc = await db.read(state.pool, lambda conn: store.get_progress(conn, tenant, doc_id))
    if not document_caught_up(doc, seen):
        return doc, []
    return doc, (await read_verdict_classes(state, [doc_id]))[doc_id]


async def wait_for_projections(
    read: Callable[[], Awaitable[tuple[Row | None, list[Row]]]],
    seen: Seen,
    wait_s: float = WAIT_S,
    poll_s: float = POLL_S,
    poll_max_s: float = POLL_MAX_S,
) -> bool:
    """Poll ``read`` until the projections have caught up with ``seen``; False after
    ``wait_s`` (a store outage is waited out like a lagging writer).

    The pauses grow (25 ms doubling to 250 ms): a short lag is met quickly, and a long one,
    under load, costs a few reads instead of twenty a second per waiting stream (the fixed
    50 ms poll was ~30 % of the gateway's CPU under load)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait_s
    warned = False
    while True:
        try:
            if caught_up(*await read(), seen):
                return True
        except Exception as exc:
            if not warned:  # once per stream: an outage would log every poll otherwise
                log.warning("projections unreadable while a stream waits for done: %s", exc)
                warned = True
        if loop.time() >= give_up:
            return False
        await asyncio.sleep(poll_s)
        poll_s = min(poll_s * 2, poll_max_s)
