"""The retro-scan's rules, pure: what triggers, what is selected, how fast, what is reused."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Verdicts an engine gave after looking at the bytes: only these are worth scanning again
# (a timeout or an error is not a judgement; too_large/unsupported do not depend on signatures).
CONCLUSIVE = frozenset({"clean", "suspicious", "malicious"})
FLAGGED = frozenset({"suspicious", "malicious"})
NOT_REUSED = frozenset({"timeout", "error"})  # inconclusive: the same bytes are scanned again
REASONS = ("signatures", "manual")


@dataclass(frozen=True)
class RescanJob:
    id: uuid.UUID
    scope: str
    scanner: str
    reason: str  # "signatures" | "manual"
    signatures_version: str | None  # the version that triggered it; None: any (manual)
    since: datetime
    created_at: datetime
    sha256: str | None = None
    position: Position | None = None
    selected: int = 0
    requested: int = 0
    state: str = "pending"


@dataclass(frozen=True)
class Position:
    """How far a job has read: the index hour, and the last row of it that was handled."""

    hour: datetime
    end_at: datetime | None = None
    doc_id: uuid.UUID | None = None


@dataclass(frozen=True)
class IndexRow:
    """One verdict as ``verdicts_by_scanner`` lists it."""

    end_at: datetime
    doc_id: uuid.UUID
    tenant: str
    verdict: str
    signatures_version: str


@dataclass(frozen=True)
class Current:
    """A document's verdict by one scanner as the projection shows it now."""

    verdict: str
    signatures_version: str
    end_at: datetime


# -- the trigger ------------------------------------------------------------------------------
def real_version(version: str | None) -> bool:
    """A version worth recording: engines without signatures say "", a failed probe
    "unknown (...)"; neither is a change of signatures."""
    return bool(version) and not str(version).startswith("unknown")


def unseen(current: Mapping[str, str], known: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """(scanner, version) pairs announced now that this worker has not recorded yet."""
    return sorted(
        (name, version)
        for name, version in current.items()
        if real_version(version) and (name, version) not in known
    )


# -- the rate ---------------------------------------------------------------------------------
@dataclass
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up.  :meth:`reserve` takes one now
    and says how long to wait before using it (callers sleep that long), so a caller that
    reserves ahead is still held to the rate."""

    rate: float
    burst: float = 1.0
    tokens: float | None = None
    at: float | None = None

    def reserve(self, now: float) -> float:
        if self.rate <= 0:
            raise ValueError("a rescan rate must be above 0 per second")
        if self.tokens is None or self.at is None:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


# -- selection --------------------------------------------------------------------------------
def floor_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hours(since: datetime, until: datetime) -> list[datetime]:
    """The index hours covering ``[since, until]``, oldest first."""
    first, last = floor_hour(since), floor_hour(until)
    count = int((last - first) / timedelta(hours=1)) + 1
    return [first + timedelta(hours=i) for i in range(max(0, count))]


def worth_a_look(row: IndexRow, job: RescanJob) -> bool:
    """The index row alone says the verdict may need a rescan (no read of the projection)."""
    if row.verdict not in CONCLUSIVE or not job.since <= row.end_at <= job.created_at:
        return False
    return job.signatures_version is None or row.signatures_version != job.signatures_version


def needs_rescan(row: IndexRow, current: Current | None, job: RescanJob) -> bool:
    """The verdict the row lists is still the document's current one, conclusive, and made
    with other signatures than the job's (any, for a manual job).  A newer verdict has an
    index row of its own, so an older row never selects the document twice."""
    if current is None or current.end_at != row.end_at or current.verdict not in CONCLUSIVE:
        return False
    return job.signatures_version is None or current.signatures_version != job.signatures_version


def after(position: Position | None, hour: datetime) -> tuple[datetime, uuid.UUID] | None:
    """Where to start reading ``hour``: past the position's last row when it is this hour."""
    if position is None or position.hour != hour or position.end_at is None:
        return None
    if position.doc_id is None:
        return None
    return position.end_at, position.doc_id


# -- copying a changed verdict to the same bytes ------------------------------------------------
def copy_to(current: Current | None, verdict: str, end_at: datetime, since: datetime) -> bool:
    """Whether a document with the same bytes gets the rescan's changed verdict: its own is
    conclusive, older than the rescan, within the job's window, and different."""
    if current is None or current.verdict not in CONCLUSIVE:
        return False
    return since <= current.end_at < end_at and current.verdict != verdict


# -- reuse ------------------------------------------------------------------------------------
def choose_reusable(
    docs: Sequence[Sequence[Mapping[str, Any]]], current: Mapping[str, str]
) -> list[tuple[Mapping[str, Any], bool]]:
    """Per scanner, the verdict row to reuse from the same-content documents (newest
    document first) and whether it is stale.  A row made with the engine's current
    signatures wins; when none is, the newest row is handed out marked stale (no verdict
    with the current signatures exists yet).  An engine not in ``current`` (no heartbeat)
    has nothing to compare with, and too_large/unsupported do not depend on signatures:
    those rows are never stale.  Timeouts and errors are never reused."""
    chosen: dict[str, tuple[Mapping[str, Any], bool]] = {}
    for rows in docs:
        for row in rows:
            name, verdict = str(row["scanner"]), row.get("verdict")
            if verdict in NOT_REUSED:
                continue
            stale = (
                verdict in CONCLUSIVE
                and name in current
                and row.get("signatures_version") != current[name]
            )
            if name not in chosen or (chosen[name][1] and not stale):
                chosen[name] = (row, stale)
    return [chosen[name] for name in sorted(chosen)]


def settled(chosen: Iterable[tuple[Mapping[str, Any], bool]]) -> bool:
    """Nothing chosen is stale: older documents need not be read."""
    return not any(stale for _, stale in chosen)
