"""Earlier verdicts: what each scanner said about a document before its current verdict.

The projection keeps one verdict per (document, scanner); ``verdict_history`` keeps every one
(written by the materializer, keyed by the verdict's end time).  scan-results shows them as
``earlier`` (newest first) beside each current verdict that has any.  Only a document whose
current verdicts replaced something (a rescan that changed a verdict, a real verdict after a
timeout) has earlier ones worth a read, so the others cost no second query.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from gateway.verdicts import _iso, _wrap, previous_verdict, replaced_a_timeout, verdict_view

Row = dict[str, Any]


def replaced_something(row: Row) -> bool:
    return previous_verdict(row) is not None or replaced_a_timeout(row)


def earlier_view(row: Row) -> dict[str, Any]:
    return {
        "verdict": row.get("verdict"),
        "result": row.get("scan_result"),
        "engine_version": row.get("engine_version"),
        "signatures_version": row.get("signatures_version"),
        "start_at": _iso(row.get("start_at")),
        "end_at": _iso(row.get("end_at")),
        "reused": row.get("reused_from") is not None,
        "rescan": row.get("rescan_previous") is not None,
    }


def earlier_by_scanner(current: list[Row], history: list[Row]) -> dict[str, list[dict[str, Any]]]:
    """Each scanner's history rows older than its current verdict, newest first."""
    now: dict[str, datetime | None] = {str(r["scanner"]): r.get("end_at") for r in current}
    earlier: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(history, key=lambda r: r["end_at"], reverse=True):
        scanner, shown = str(row["scanner"]), now.get(str(row["scanner"]))
        if shown is not None and row["end_at"] < shown:
            earlier.setdefault(scanner, []).append(earlier_view(row))
    return earlier


async def read_history(state: Any, doc_id: uuid.UUID) -> list[Row]:
    keyspace = state.settings.cassandra.keyspace
    query = state.cassandra.prepared(f"SELECT * FROM {keyspace}.verdict_history WHERE doc_id = ?")
    return [
        dict(row) for row in await _wrap(state.cassandra.session.execute_async(query, (doc_id,)))
    ]


async def with_earlier(state: Any, doc_id: uuid.UUID, rows: list[Row]) -> list[dict[str, Any]]:
    """The public view of each current verdict, with its ``earlier`` ones when it has any (so
    a verdict with none reads exactly as its event on a stream)."""
    views = [verdict_view(r) for r in rows]
    if not any(replaced_something(r) for r in rows):
        return views
    earlier = earlier_by_scanner(rows, await read_history(state, doc_id))
    for view in views:
        if str(view["scanner"]) in earlier:
            view["earlier"] = earlier[str(view["scanner"])]
    return views
