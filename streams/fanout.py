"""Who a document's scan request asks, pure: the orchestrator's decision per live scanner.

A live scanner that does not accept the document's file type (its heartbeat's ``accepts``) is
not asked: the orchestrator writes its ``unsupported`` verdict itself, so it never downloads
the file.  That verdict is decided again for every document from the declarations of the
day, never reused: a scanner that now refuses the type gets ``unsupported`` whatever an
earlier document with the same bytes got from it, and one that now accepts the type is asked
even when an earlier document got the orchestrator's ``unsupported`` for it.  A verdict the
engine gave itself (an ``unsupported`` it found in the bytes included) is reused as before.

A scanner is asked when it accepts the detected type or any of the ``also_types`` the bytes
can be read as (a PDF behind junk, a polyglot, a zip appended to an executable): the attacker
chooses the bytes, so the primary type alone must never let them skip an engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.enums import Verdict
from schemas.records import ScannerHeartbeat, ScanVerdict, refusal


@dataclass(frozen=True)
class FanOut:
    ask: tuple[ScannerHeartbeat, ...]  # listed in the scan request
    reused: tuple[ScanVerdict, ...]  # copied from an earlier document with the same bytes
    unsupported: tuple[ScanVerdict, ...]  # answered here: the scanner refuses the type


def plan(
    live: Sequence[ScannerHeartbeat],
    reused: Sequence[ScanVerdict],
    file_type: str | None,
    doc_id: str,
    tenant: str,
    now: datetime,
    also_types: Sequence[str] = (),
) -> FanOut:
    refusing = [s for s in live if not takes_any(s, file_type, also_types)]
    refused = {s.name for s in refusing}
    kept = tuple(r for r in reused if r.scanner not in refused and not given_unsupported(r))
    answered = {r.scanner for r in kept} | refused
    return FanOut(
        ask=tuple(s for s in live if s.name not in answered),
        reused=kept,
        unsupported=tuple(
            unsupported_verdict(s, str(file_type), doc_id, tenant, now) for s in refusing
        ),
    )


def takes_any(scanner: ScannerHeartbeat, file_type: str | None, also: Sequence[str]) -> bool:
    """The scanner accepts the detected type or one the bytes can also be read as."""
    return scanner.takes(file_type) or any(scanner.takes(t) for t in also)


def unsupported_verdict(
    scanner: ScannerHeartbeat, file_type: str, doc_id: str, tenant: str, now: datetime
) -> ScanVerdict:
    """The orchestrator's answer for a scanner that does not accept ``file_type``: its
    vendor, but no engine or signatures version (no engine looked at the file)."""
    return ScanVerdict(
        doc_id=doc_id,
        tenant=tenant,
        scanner=scanner.name,
        vendor=scanner.vendor,
        verdict=Verdict.UNSUPPORTED,
        result=refusal(scanner.name, scanner.accepts or (), file_type),
        engine_version="",
        signatures_version="",
        start_at=now,
        end_at=now,
    )


def given_unsupported(verdict: ScanVerdict) -> bool:
    """An ``unsupported`` the orchestrator gave (no engine version: no engine ran)."""
    return verdict.verdict == Verdict.UNSUPPORTED and not verdict.engine_version
