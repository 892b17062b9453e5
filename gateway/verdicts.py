"""Verdicts as the API shows them, read from Cassandra (the projection of scan.verdicts).

A verdict is ``late`` when it replaced a ``timeout`` given before it: the projection keeps the
offset of the timeout (``timeout_offset``) beside the verdict that won, so it is late when it
came after that timeout on the topic.  An event stream marks it from what it has seen itself.
A verdict is a ``rescan`` when the scanner judged the document again after its signatures
changed (or an operator asked) and changed its mind; ``previous_verdict`` says from what.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

FLAGGED = frozenset({"suspicious", "malicious"})


async def read_verdicts(state: Any, doc_id: uuid.UUID) -> list[dict[str, Any]]:
    """All verdict rows of one document (one partition), without blocking the loop."""
    keyspace = state.settings.cassandra.keyspace
    query = state.cassandra.prepared(f"SELECT * FROM {keyspace}.verdicts WHERE doc_id = ?")
    future = state.cassandra.session.execute_async(query, (doc_id,))
    rows = await _wrap(future)
    return [dict(row) for row in rows]


async def read_verdict_classes(
    state: Any, doc_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Each document's (scanner, verdict) rows, for a page of documents: one single-partition
    read per document, all in flight at once.  The driver routes each to a replica of its
    partition (token-aware); ``IN`` over partition keys would make one coordinator gather
    them all, and a count kept in Postgres would add a second write per verdict."""
    if not doc_ids:
        return {}
    keyspace = state.settings.cassandra.keyspace
    query = state.cassandra.prepared(
        f"SELECT scanner, verdict FROM {keyspace}.verdicts WHERE doc_id = ?"
    )
    session = state.cassandra.session
    pages = await asyncio.gather(*(_wrap(session.execute_async(query, (d,))) for d in doc_ids))
    return {
        doc_id: [dict(row) for row in rows] for doc_id, rows in zip(doc_ids, pages, strict=True)
    }


def _wrap(response_future: Any) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    result: asyncio.Future[Any] = loop.create_future()

    def ok(rows: Any) -> None:
        loop.call_soon_threadsafe(_set, result, list(rows), None)

    def err(exc: BaseException) -> None:
        loop.call_soon_threadsafe(_set, result, None, exc)

    response_future.add_callbacks(ok, err)
    return result


def _set(future: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)


def _iso(value: Any) -> Any:
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:  # Cassandra timestamps are UTC and come back naive
        value = value.replace(tzinfo=UTC)
    return value.isoformat(timespec="milliseconds")


def verdict_view(row: dict[str, Any]) -> dict[str, Any]:
    """The public shape of one verdict, from a Cassandra row or a scan.verdicts event."""
    return {
        "scanner": row.get("scanner"),
        "vendor": row.get("vendor"),
        "verdict": row.get("verdict"),
        "result": row.get("scan_result", row.get("result")),
        "engine_version": row.get("engine_version"),
        "signatures_version": row.get("signatures_version"),
        "start_at": _iso(row.get("start_at")),
        "end_at": _iso(row.get("end_at")),
        "reused": row.get("reused_from") is not None,
        "late": bool(row.get("late")) or replaced_a_timeout(row),
        "rescan": previous_verdict(row) is not None,
        "previous_verdict": previous_verdict(row),
        "signatures_stale": bool(row.get("signatures_stale")),
    }


def previous_verdict(row: dict[str, Any]) -> str | None:
    """What a rescan's verdict replaced (None: not a rescan's): the event's ``rescan`` record
    or the projection's ``rescan_previous`` column."""
    rescan = row.get("rescan")
    if isinstance(rescan, dict):
        return str(rescan.get("previous_verdict"))
    previous = row.get("rescan_previous")
    return None if previous is None else str(previous)


def replaced_a_timeout(row: dict[str, Any]) -> bool:
    """A projected verdict that came after a ``timeout`` for the same scanner."""
    timeout_at, offset = row.get("timeout_offset"), row.get("kafka_offset")
    if row.get("verdict") == "timeout" or timeout_at is None or offset is None:
        return False
    return int(offset) > int(timeout_at)


def summary(rows: list[dict[str, Any]], expected: int | None) -> dict[str, int | None]:
    flagged = sum(1 for r in rows if r.get("verdict") in FLAGGED)
    return {"flagged": flagged, "scanned": len(rows), "expected": expected}
