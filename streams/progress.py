"""The completion tracker's logic, pure: a document's progress and what each event changes.

State (one per document, kept in a Faust table)::

    {"tenant": str, "status": str, "expected": {scanner: deadline_ms} | None,
     "got": [scanner, ...], "timed_out": [scanner, ...], "finished_ms": int | None}

Each ``on_*`` function takes the state (or None) and an event record and returns the new state
plus the status events to emit.  Verdicts can arrive before the scan request (different
topics), so "got" is kept even while "expected" is unknown.
"""

from __future__ import annotations

from typing import Any

State = dict[str, Any]
RANK = {"requested": 0, "uploaded": 1, "in_progress": 2, "done": 3, "failed": 3}


def new_state(tenant: str, now_ms: int) -> State:
    return {
        "created_ms": now_ms,
        "tenant": tenant,
        "status": "requested",
        "expected": None,
        "got": [],
        "timed_out": [],
        "finished_ms": None,
    }


def status_event(
    doc_id: str, state: State, status: str, now_ms: int, reason: str | None = None
) -> dict[str, Any]:
    expected = state["expected"]
    return {
        "doc_id": doc_id,
        "tenant": state["tenant"],
        "status": status,
        "reason": reason,
        "expected": None if expected is None else len(expected),
        "at": now_ms,
    }


def _advance(
    doc_id: str, state: State, status: str, now_ms: int, reason: str | None = None
) -> list[dict[str, Any]]:
    if RANK[status] <= RANK[state["status"]]:
        return []
    state["status"] = status
    if status in ("done", "failed"):
        state["finished_ms"] = now_ms
    return [status_event(doc_id, state, status, now_ms, reason)]


def on_confirmed(
    state: State | None, event: dict[str, Any], now_ms: int
) -> tuple[State, list[dict[str, Any]]]:
    """The gateway announced 'uploaded' itself (with docs.confirmed, through its outbox):
    track it without a second status event."""
    state = state or new_state(event["tenant"], now_ms)
    if RANK[state["status"]] < RANK["uploaded"]:
        state["status"] = "uploaded"
    return state, []


def on_metadata(
    state: State | None, event: dict[str, Any], now_ms: int
) -> tuple[State, list[dict[str, Any]]]:
    state = state or new_state(event["tenant"], now_ms)
    if not event.get("failed"):
        return state, []
    return state, _advance(event["doc_id"], state, "failed", now_ms, event.get("error"))


def on_scan_request(
    state: State | None, event: dict[str, Any], now_ms: int
) -> tuple[State, list[dict[str, Any]]]:
    state = state or new_state(event["tenant"], now_ms)
    if state["expected"] is not None:  # a redelivered request: the first one counts
        return state, []
    expected = {s["name"]: _ms(s["deadline_at"]) for s in event["scanners"]}
    expected.update({name: 0 for name in event.get("reused", [])})
    state["expected"] = expected
    out = _advance(event["doc_id"], state, "in_progress", now_ms)
    return state, out + _maybe_done(event["doc_id"], state, now_ms)


def on_verdict(
    state: State | None, event: dict[str, Any], now_ms: int
) -> tuple[State, list[dict[str, Any]]]:
    state = state or new_state(event["tenant"], now_ms)
    if event["scanner"] not in state["got"]:
        state["got"].append(event["scanner"])
    return state, _maybe_done(event["doc_id"], state, now_ms)


def _maybe_done(doc_id: str, state: State, now_ms: int) -> list[dict[str, Any]]:
    expected = state["expected"]
    if expected is None or not set(expected) <= set(state["got"]):
        return []
    reason = None if expected else "no scanner was registered"
    return _advance(doc_id, state, "done", now_ms, reason)


def forgettable(state: State, now_ms: int, after_ms: int) -> bool:
    """Finished long ago, or never given a scan request (a late verdict or a re-extraction
    of a document already forgotten): nothing will ever finish it, so drop it."""
    if state["finished_ms"]:
        return bool(state["finished_ms"] < now_ms - after_ms)
    stale = state.get("created_ms", 0) < now_ms - 3 * after_ms
    return state["expected"] is None and stale


def overdue(state: State, now_ms: int) -> list[str]:
    """Scanners past their deadline with no verdict and no timeout sent yet."""
    if state["expected"] is None or state["status"] in ("done", "failed"):
        return []
    waiting = set(state["expected"]) - set(state["got"]) - set(state["timed_out"])
    return sorted(n for n in waiting if 0 < state["expected"][n] <= now_ms)


def _ms(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)
