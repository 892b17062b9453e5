"""Rescans on a scanner host: a low-priority consumer of ``scan.rescans`` per scanner name,
and what a rescan sends.

A runner reads ``scan.requests`` with its consumers and ``scan.rescans`` with one more, in a
group of its own (``<name>.rescans``), one request at a time, and only while its engines have
room to spare: the rescan it took waits whenever the runner's new-document consumers hold as
many requests as they scan at once (``gate``), and the rest wait in Kafka behind it.  New
documents are never held up by rescans.

Before scanning, the engine may say the rescan cannot change anything (:meth:`Scanner.
unaffected`, e.g. a hash list whose entry for these bytes is the same in both versions): it is
skipped.  After it, only a conclusive verdict that differs from the one it replaces is sent
to ``scan.verdicts``, marked with what it replaced; an unchanged one leaves the document
untouched, and an inconclusive one (error, timeout, too large, unsupported) never replaces a
judgement: it goes to ``scan.rescans.dlq`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from ops.kafka import topic
from ops.settings import Settings
from scanners.base import Scanner, Verdict
from scanners.consumer import RequestConsumer
from scanners.requests import Rescan, ScanRequest
from schemas import topics
from schemas.records import RescanOf

CONCLUSIVE = frozenset({"clean", "suspicious", "malicious"})
GROUP_SUFFIX = ".rescans"

RESCANS = Counter(
    "intellidox_scanner_rescans",
    "Rescan requests a scanner handled, by outcome: changed (a new verdict was sent),"
    " unchanged, unaffected (skipped: the engine knows nothing changed for these bytes),"
    " failed (inconclusive: dead-lettered)",
    ["scanner", "outcome"],
)


@dataclass(frozen=True)
class Decision:
    """What a rescan's outcome makes the runner send."""

    outcome: str  # changed | unchanged | failed
    publish: bool = False
    dead_letter: str | None = None


def decide(rescan: Rescan, verdict: Verdict, crashed: str | None) -> Decision:
    if crashed is not None:
        return Decision("failed", dead_letter=f"rescan: {crashed}")
    if verdict.verdict not in CONCLUSIVE:
        reason = f"rescan gave {verdict.verdict}, kept {rescan.previous_verdict}: {verdict.result}"
        return Decision("failed", dead_letter=reason[:2000])
    if verdict.verdict == rescan.previous_verdict:
        return Decision("unchanged")
    return Decision("changed", publish=True)


def unaffected(scanner: Scanner, name: str, request: ScanRequest) -> bool:
    """The engine knows this rescan would change nothing (counted; the request is skipped)."""
    rescan = request.rescan
    if rescan is None:
        return False
    try:
        skip = scanner.unaffected(request.job(), rescan.previous_signatures_version)
    except Exception:  # a shortcut that fails is no reason not to scan
        skip = False
    if skip:
        RESCANS.labels(name, "unaffected").inc()
    return skip


def counted(name: str, decision: Decision) -> Decision:
    RESCANS.labels(name, decision.outcome).inc()
    return decision


def rescan_of(request: ScanRequest) -> RescanOf | None:
    """What marks a rescan's verdict (None for a first scan)."""
    rescan = request.rescan
    if rescan is None:
        return None
    return RescanOf(
        previous_verdict=rescan.previous_verdict,
        previous_signatures_version=rescan.previous_signatures_version,
        reason=rescan.reason,
        job_id=rescan.job_id,
    )


def source_topic(settings: Settings, message_topic: str | None) -> str:
    """The (unprefixed) topic a request came from: its dead letters go to that one's DLQ."""
    if message_topic == topic(settings, topics.SCAN_RESCANS):
        return topics.SCAN_RESCANS
    return topics.SCAN_REQUESTS


def rescan_consumer(
    config: dict[str, Any], settings: Settings, name: str, drain_s: float, gate: Callable[[], bool]
) -> RequestConsumer:
    """One request at a time, taken only while ``gate`` says the engines have room."""
    return RequestConsumer(
        config,
        topic(settings, topics.SCAN_RESCANS),
        1,
        f"{name}-rescans",
        drain_s,
        queued=1,
        gate=gate,
    )
