"""Server-sent events: the wire format, the resume cursor and the order of facts.

Every event's ``id:`` is a cursor ``<status rank>.<metadata offset>.<verdict offset>``: how far
this stream has got in each of the document's three streams of facts.  Status only moves
forward; metadata and verdicts are ordered by their Kafka offset (a document's events share
one partition).  A reconnect sends the cursor back as ``Last-Event-ID`` and gets exactly what
comes after it, from whichever gateway it reaches: no gaps and no repeats.

The topics deliver a document's facts in no particular order between them; a
:class:`Sequencer` puts them in the order a client must see them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from schemas.enums import STATUS_RANK, Status

IN_PROGRESS = STATUS_RANK[Status.IN_PROGRESS]


@dataclass(frozen=True, slots=True)
class Cursor:
    status_rank: int = -1
    meta_offset: int = -1
    verdict_offset: int = -1

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """A cursor from ``Last-Event-ID``; anything unreadable means 'from the start'."""
        if not text:
            return START
        try:
            rank, meta, verdict = (int(part) for part in text.split("."))
        except ValueError:
            return START
        return cls(rank, meta, verdict)

    def __str__(self) -> str:
        return f"{self.status_rank}.{self.meta_offset}.{self.verdict_offset}"


START = Cursor()  # from the start (frozen: shared by every stream that starts there)


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing that happened to a document, as the gateway learnt it."""

    kind: str  # "status" | "meta" | "verdict"
    offset: int  # Kafka offset in its topic (-1 when read from a projection without one)
    data: dict[str, Any]

    def advances(self, cursor: Cursor) -> Cursor | None:
        """The cursor after this fact, or None when the cursor already covers it."""
        if self.kind == "status":
            rank = STATUS_RANK.get(str(self.data.get("status")), -1)
            if rank <= cursor.status_rank:
                return None
            return Cursor(rank, cursor.meta_offset, cursor.verdict_offset)
        if self.kind == "meta":
            if self.offset <= cursor.meta_offset:
                return None
            return Cursor(cursor.status_rank, self.offset, cursor.verdict_offset)
        if self.offset <= cursor.verdict_offset:
            return None
        return Cursor(cursor.status_rank, cursor.meta_offset, self.offset)


@dataclass(slots=True)
class Sequencer:
    """One stream's facts in the order a client must see them, whatever order the topics
    delivered them in (pure: the stream writes what :meth:`accept` returns):

    - verdicts wait until the status is at least ``in_progress`` (which says how many to
      expect), so they never come before it;
    - a real verdict after a ``timeout`` of the same scanner replaces it and is marked late;
    - a ``timeout`` after the scanner's real verdict is dropped: the real one stands;
    - a second real verdict of a scanner (a request scanned again after a crash) is dropped,
      unless it is a rescan's (the scanner judged the document again and changed its mind).
    """

    status_rank: int = -1
    verdicts: dict[str, str] = field(default_factory=dict)  # scanner -> its verdict class
    held: tuple[Fact, ...] = ()  # a tuple: the empty one costs an idle stream nothing

    def accept(self, fact: Fact) -> list[Fact]:
        if fact.kind == "status":
            rank = STATUS_RANK.get(str(fact.data.get("status")), -1)
            self.status_rank = max(self.status_rank, rank)
            return [fact, *self.release()] if self.status_rank >= IN_PROGRESS else [fact]
        if fact.kind != "verdict":
            return [fact]
        judged = self._judge(fact)
        if judged is None:
            return []
        if self.status_rank < IN_PROGRESS:
            self.held = (*self.held, judged)
            return []
        return [judged]

    def release(self) -> list[Fact]:
        """The verdicts held back, in the order they came (for when a status is overdue)."""
        held, self.held = self.held, ()
        return list(held)

    def _judge(self, fact: Fact) -> Fact | None:
        scanner, verdict = str(fact.data.get("scanner")), str(fact.data.get("verdict"))
        before = self.verdicts.get(scanner)
        if fact.data.get("rescan") or fact.data.get("rescan_previous"):
            self.verdicts[scanner] = verdict  # a rescan changed the scanner's mind: it counts
            return fact
        if before not in (None, "timeout"):
            # The scanner has answered: a later timeout is dropped, and so is a second real
            # verdict (the same request scanned again after a crash, at-least-once).
            return None
        self.verdicts[scanner] = verdict
        if verdict != "timeout" and before == "timeout":
            return Fact(fact.kind, fact.offset, {**fact.data, "late": True})
        return fact


def encode_event(event: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), sort_keys=True, default=str))
    return ("\n".join(lines) + "\n\n").encode()


def heartbeat() -> bytes:
    return b": keep-alive\n\n"


def retry_hint(ms: int) -> bytes:
    return f"retry: {ms}\n\n".encode()
