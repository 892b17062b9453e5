"""What a fault run did to the truth: documents and verdicts lost or duplicated, false
verdicts, counted on the verdict topic, in the projections (the REST API) and on the streams."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp

from ops.bench.load import Load, call
from ops.kafka import topic
from ops.settings import Settings
from schemas import topics
from schemas.events import decode_event

FALSE = frozenset({"timeout", "error"})  # simulated engines never time out or fail


@dataclass(frozen=True)
class Audit:
    documents: int
    documents_lost: int
    topic_verdicts_lost: int
    topic_verdicts_duplicated: int
    projection_verdicts_lost: int
    false_verdicts: int
    stream_repeats: int
    server_errors: int
    unavailable: int


def topic_counts(settings: Settings, doc_ids: set[str]) -> Counter[tuple[str, str]]:
    """Real (non-timeout) verdicts per (document, scanner) on scan.verdicts."""
    from ops.replay import read_all

    counts: Counter[tuple[str, str]] = Counter()
    for message in read_all(settings, topic(settings, topics.SCAN_VERDICTS)):
        record = decode_event(message.value() or b"")
        if record["doc_id"] in doc_ids and record["verdict"] != "timeout":
            counts[(record["doc_id"], record["scanner"])] += 1
    return counts


async def projected(session: aiohttp.ClientSession, load: Load, doc_id: str) -> list[Any]:
    body = await call(session, load, "GET", f"/docs/{doc_id}/scan-results")
    return list(body["scan_results"])


def stream_repeats(verdict_events: list[dict[str, Any]]) -> int:
    """Verdict events a client got twice for one scanner (a late one replacing a timeout is
    a correction, not a repeat)."""
    seen: dict[str, str] = {}
    repeats = 0
    for event in verdict_events:
        previous = seen.get(event["scanner"])
        if previous is not None and previous != "timeout":
            repeats += 1
        seen[event["scanner"]] = event["verdict"]
    return repeats


async def audit(
    session: aiohttp.ClientSession, load: Load, settings: Settings, scanners: list[str]
) -> Audit:
    confirmed = [d for d in load.docs if d.confirmed_at is not None]
    ids = {d.doc_id for d in confirmed}
    counts = await asyncio.to_thread(topic_counts, settings, ids)
    pairs = [(d, s) for d in ids for s in scanners]
    rows = await asyncio.gather(*(projected(session, load, d) for d in ids))
    present = [(r["scanner"], r["verdict"]) for doc_rows in rows for r in doc_rows]
    real = sum(1 for _, verdict in present if verdict not in FALSE)
    return Audit(
        documents=len(load.docs),
        documents_lost=len(load.docs) - sum(1 for d in load.docs if d.done_at is not None),
        topic_verdicts_lost=sum(1 for pair in pairs if counts[pair] == 0),
        topic_verdicts_duplicated=sum(n - 1 for n in counts.values() if n > 1),
        projection_verdicts_lost=len(pairs) - real,
        false_verdicts=sum(1 for _, verdict in present if verdict in FALSE),
        stream_repeats=sum(stream_repeats(d.verdict_events) for d in confirmed),
        server_errors=load.server_errors(),
        unavailable=load.unavailable(),
    )
