"""The completion tracker's logic, pure: a document's progress and what each event changes.

One :class:`Progress` per document, kept as JSON in a Faust table.  Each ``on_*`` function
takes the progress (or None) and an event record and returns the new progress plus the status
events to emit.  Verdicts can arrive before the scan request (different topics), so ``got`` is
kept even while ``expected`` is unknown.

Deadlines measure the engine, not our own outages.  The runner reports ``timeout`` when a live
engine overruns; the tracker gives one only when a scanner's group has had no live member for
longer than its deadline while the request waited.  That "no live member" time is charged by
:class:`DeadlineClock` ticks, which count only time this tracker was running with a fresh view
of the registry: a restarted worker does not charge the time it was dead, nor a tracker whose
registry view went stale because Kafka was away.  A real verdict after a ``timeout`` replaces
it (the projections and the gateway see to that); the status never moves backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from schemas.documents import DocsConfirmed, DocsMetadata, DocsStatus
from schemas.enums import STATUS_RANK, TERMINAL
from schemas.record import at_ms
from schemas.records import ScanVerdict
from schemas.scans import ScanRequest

Event = DocsStatus  # what each step emits
RANK = STATUS_RANK
FINISHED = TERMINAL
VERSION = 2  # of the JSON in the table; version 1 kept absolute deadlines in ``expected``


@dataclass
class Progress:
    tenant: str
    created_ms: int
    status: str = "requested"
    # scanner -> its deadline in ms (0: none, a reused verdict); None before the scan request
    expected: dict[str, int] | None = None
    requested_ms: int | None = None
    got: list[str] = field(default_factory=list)  # scanners with a verdict (timeouts too)
    timed_out: list[str] = field(default_factory=list)  # timeouts this tracker gave
    late: list[str] = field(default_factory=list)  # real verdicts that replaced those
    down_ms: dict[str, int] = field(default_factory=dict)  # charged "no live member" time
    finished_ms: int | None = None

    # Every field is a scalar or a flat list/dict of scalars, so copying each container is a
    # full copy: dataclasses.asdict and copy.deepcopy cost ~10x more, on every event and tick.
    def to_json(self) -> dict[str, Any]:
        return {"v": VERSION, **{name: _copied(getattr(self, name)) for name in _FIELDS}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        if data.get("v") != VERSION:
            return cls(**_upgrade(data))
        return cls(**{name: _copied(value) for name, value in data.items() if name != "v"})


_FIELDS = tuple(f.name for f in fields(Progress))


def _copied(value: Any) -> Any:
    return value.copy() if isinstance(value, list | dict) else value


def _upgrade(old: dict[str, Any]) -> dict[str, Any]:
    """A version-1 state: deadlines were absolute; count each from when tracking began."""
    created = int(old.get("created_ms", 0))
    expected = old.get("expected")
    if expected is not None:
        expected = {n: max(1, at - created) if at > 0 else 0 for n, at in expected.items()}
    return {
        "tenant": old["tenant"],
        "created_ms": created,
        "status": old["status"],
        "expected": expected,
        "got": list(old.get("got", [])),
        "timed_out": list(old.get("timed_out", [])),
        "finished_ms": old.get("finished_ms"),
    }


def status_event(
    doc_id: str, p: Progress, status: str, now_ms: int, reason: str | None = None
) -> Event:
    expected = None if p.expected is None else len(p.expected)
    return DocsStatus(doc_id, p.tenant, status, reason, expected, at_ms(now_ms))


def _advance(
    doc_id: str, p: Progress, status: str, now_ms: int, reason: str | None = None
) -> list[Event]:
    if RANK[status] <= RANK[p.status]:
        return []
    p.status = status
    if status in FINISHED:
        p.finished_ms = now_ms
    return [status_event(doc_id, p, status, now_ms, reason)]


def on_confirmed(
    p: Progress | None, event: DocsConfirmed, now_ms: int
) -> tuple[Progress, list[Event]]:
    """The gateway announced 'uploaded' itself (with docs.confirmed, through its outbox):
    track it without a second status event."""
    p = p or Progress(event.tenant, now_ms)
    if RANK[p.status] < RANK["uploaded"]:
        p.status = "uploaded"
    return p, []


def on_metadata(
    p: Progress | None, event: DocsMetadata, now_ms: int
) -> tuple[Progress, list[Event]]:
    p = p or Progress(event.tenant, now_ms)
    if not event.failed:
        return p, []
    return p, _advance(event.doc_id, p, "failed", now_ms, event.error)


def on_scan_request(
    p: Progress | None, event: ScanRequest, now_ms: int
) -> tuple[Progress, list[Event]]:
    p = p or Progress(event.tenant, now_ms)
    if p.expected is not None:  # a redelivered request: the first one counts
        return p, []
    requested = _ms(event.requested_at)
    expected = {s.name: max(1, _ms(s.deadline_at) - requested) for s in event.scanners}
    expected.update({name: 0 for name in event.reused})
    expected.update({name: 0 for name in event.unsupported})  # answered at fan-out
    p.expected, p.requested_ms = expected, requested
    out = _advance(event.doc_id, p, "in_progress", now_ms)
    return p, out + _maybe_done(event.doc_id, p, now_ms)


def on_verdict(p: Progress | None, event: ScanVerdict, now_ms: int) -> tuple[Progress, list[Event]]:
    """Any verdict counts, a timeout too; a real one after our timeout is noted as late (the
    document stays done: its status never moves backwards)."""
    p = p or Progress(event.tenant, now_ms)
    scanner = event.scanner
    if event.verdict != "timeout" and scanner in p.timed_out and scanner not in p.late:
        p.late.append(scanner)
    if scanner not in p.got:
        p.got.append(scanner)
    return p, _maybe_done(event.doc_id, p, now_ms)


def _maybe_done(doc_id: str, p: Progress, now_ms: int) -> list[Event]:
    if p.expected is None or not set(p.expected) <= set(p.got):
        return []
    reason = None if p.expected else "no scanner was registered"
    return _advance(doc_id, p, "done", now_ms, reason)


def forgettable(p: Progress, now_ms: int, after_ms: int) -> bool:
    """Finished long ago, or never given a scan request (a late verdict or a re-extraction
    of a document already forgotten): nothing will ever finish it, so drop it."""
    if p.finished_ms:
        return p.finished_ms < now_ms - after_ms
    return p.expected is None and p.created_ms < now_ms - 3 * after_ms


# -- deadlines ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Liveness:
    """The scanner registry as the tracker saw it at one tick."""

    fresh: bool  # the view was complete up to a moment ago (Kafka answered, history read)
    alive: frozenset[str]  # scanner names with a live member


@dataclass
class DeadlineClock:
    """How much of the time since the last tick counts against deadlines: only time this
    tracker ran with a fresh registry view on both ends (its first tick, and the first tick
    after a stale one, count nothing), and at most ``max_step_ms`` (a stalled loop is no
    engine's fault either)."""

    max_step_ms: int
    last_ms: int | None = None

    def step(self, now_ms: int, fresh: bool) -> int:
        last, self.last_ms = self.last_ms, (now_ms if fresh else None)
        if last is None or not fresh:
            return 0
        return max(0, min(now_ms - last, self.max_step_ms))


def waiting(p: Progress) -> list[str]:
    """Scanners with a deadline that this unfinished document still waits for."""
    if p.expected is None or p.status in FINISHED:
        return []
    done = set(p.got) | set(p.timed_out)
    return sorted(n for n, deadline in p.expected.items() if deadline > 0 and n not in done)


def charge(p: Progress, alive: frozenset[str], step_ms: int) -> bool:
    """Charge ``step_ms`` to every awaited scanner with no live member; True if any."""
    dead = [n for n in waiting(p) if n not in alive] if step_ms > 0 else []
    for name in dead:
        p.down_ms[name] = p.down_ms.get(name, 0) + step_ms
    return bool(dead)


def stalled(p: Progress, alive: frozenset[str], now_ms: int, floor_ms: int) -> list[str]:
    """Awaited scanners with a live member that have not answered although twice their
    deadline plus ``floor_ms`` passed since the request.  A live scanner answers within its
    deadline once it starts scanning, so such a wait means its verdict was lost on our side
    (see :mod:`streams.reread`), or the scanner is far behind its requests."""
    if p.requested_ms is None:
        return []
    waited, expected = now_ms - p.requested_ms, p.expected or {}
    return [n for n in waiting(p) if n in alive and waited > 2 * expected[n] + floor_ms]


def overdue(p: Progress) -> list[str]:
    """Awaited scanners whose group has been gone for longer than their deadline."""
    expected = p.expected or {}
    return [n for n in waiting(p) if p.down_ms.get(n, 0) > expected[n]]


def _ms(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    raise TypeError(f"not a timestamp: {value!r}")
