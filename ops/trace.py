"""``intellidox trace DOC_ID``: a document's whole history, read from the topics.

Every event of the document, in time order, with the record's timestamp, its topic, partition
and offset, and the stage that produced it: the upload requested and confirmed (gateway), the
metadata (extraction), the scan request (fan-out), each verdict (its scanner, a reused one, or
the tracker's timeout), each status, re-extraction requests, and any dead letter the document
left.  Facts are kept forever and keyed by document id, so only the document's partition of
each topic is read (:func:`ops.replay.read_all` with ``key``), as the operator principal.

Nothing secret is printed: the scan request's pre-signed download URL is left out.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message

from ops.dlq import entry_of
from ops.kafka import topic
from ops.logs import redact
from ops.replay import read_all
from ops.settings import Settings
from schemas import topics
from schemas.events import decode_event

HIDDEN = frozenset({"download_url", "_schema"})  # secrets, and our own bookkeeping
DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class TraceEvent:
    time_ms: int  # the record's timestamp
    topic: str  # without the prefix
    partition: int
    offset: int
    stage: str
    kind: str  # the event's schema (docs_status, scan_verdict...) or dead_letter
    summary: str
    fields: tuple[tuple[str, str], ...]  # the record's fields, as text

    def as_json(self) -> dict[str, Any]:
        return {
            "time": _iso(self.time_ms),
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "stage": self.stage,
            "kind": self.kind,
            "summary": self.summary,
            "fields": dict(self.fields),
        }

    def line(self) -> str:
        place = f"{self.topic}[{self.partition}]@{self.offset}"
        return f"{_iso(self.time_ms)}  {place:<28} {self.stage:<22} {self.summary}"


def trace(settings: Settings, doc_id: str) -> list[TraceEvent]:
    """The document's events on every fact topic and dead-letter topic, oldest first."""
    key = doc_id.encode()
    facts = {topic(settings, name): name for name in topics.FACT_TOPICS}
    dead = {topic(settings, topics.dlq(name)): name for name in topics.FACT_TOPICS}
    found: list[TraceEvent] = []
    for message in read_all(settings, [*facts, *dead], key=key):  # one consumer for all
        if message.key() != key:
            continue
        name = message.topic() or ""
        if name in facts:
            found.append(_fact(facts[name], message))
        else:
            found.append(_dead_letter(dead[name], message))
    order = {name: i for i, name in enumerate(topics.FACT_TOPICS)}
    return sorted(found, key=lambda e: (e.time_ms, order.get(e.topic, 99), e.offset))


def _fact(name: str, message: Message) -> TraceEvent:
    try:
        record = decode_event(message.value() or b"")
    except ValueError as exc:  # poison: it is (or will be) in the dead-letter topic too
        return _event(name, message, "?", "undecodable", f"undecodable: {exc}", {})
    kind = str(record["_schema"])
    stage, summary = _describe(kind, record)
    return _event(name, message, stage, kind, summary, record)


def _dead_letter(source: str, message: Message) -> TraceEvent:
    letter = entry_of(source, message).letter
    stage = letter.stage or "?"
    if letter.scanner:
        stage = f"{stage}:{letter.scanner}"
    fields = {
        "error": letter.error,
        "source_topic": letter.source_topic,
        "source_partition": letter.source_partition,
        "source_offset": letter.source_offset,
    }
    summary = f"dead letter: {letter.error.splitlines()[0] if letter.error else '?'}"
    return _event(topics.dlq(source), message, stage, DEAD_LETTER, summary, fields)


def _event(
    name: str, message: Message, stage: str, kind: str, summary: str, record: dict[str, Any]
) -> TraceEvent:
    fields = tuple(
        (k, redact(_text(v))) for k, v in record.items() if k not in HIDDEN and v is not None
    )
    return TraceEvent(
        message.timestamp()[1],
        name,
        message.partition() or 0,
        message.offset() or 0,
        stage,
        kind,
        redact(summary),
        fields,
    )


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


Describe = Callable[[dict[str, Any]], tuple[str, str]]


def _requested(r: dict[str, Any]) -> tuple[str, str]:
    return "gateway", f"upload requested: {r['file_name']!r}, {r['file_size']} bytes"


def _confirmed(r: dict[str, Any]) -> tuple[str, str]:
    version = r.get("version_id") or "-"
    return "gateway", f"upload confirmed: {r['file_size']} bytes, object version {version}"


def _metadata(r: dict[str, Any]) -> tuple[str, str]:
    took = f"in {r.get('duration_ms', '?')} ms"
    if r.get("failed"):
        return "worker:extraction", f"extraction failed {took}: {r.get('error')}"
    sha = (r.get("sha256") or "")[:16]
    error = f", script error: {r['error']}" if r.get("error") else ""
    also = ", ".join(r.get("also_types") or [])  # why a scanner of another type was asked
    kind = f"{r.get('file_type')} (also {also})" if also else r.get("file_type")
    return "worker:extraction", (
        f"metadata: {kind}, sha256 {sha}…, script {r.get('script_version')} {took}{error}"
    )


def _scan_request(r: dict[str, Any]) -> tuple[str, str]:
    names = ", ".join(s["name"] for s in r.get("scanners") or []) or "none"
    reused = ", ".join(r.get("reused") or []) or "none"
    unsupported = ", ".join(r.get("unsupported") or []) or "none"
    return "worker:fan-out", (
        f"scan requested from {names}; reused: {reused}; type not accepted by: {unsupported}"
    )


def _verdict(r: dict[str, Any]) -> tuple[str, str]:
    result = str(r.get("result") or "")[:100]
    summary = f"verdict {r['scanner']}: {r['verdict']}" + (f" ({result})" if result else "")
    if r.get("rescan"):  # a rescan changed it (copies to the same bytes come from the worker)
        summary += f", rescan: was {r['rescan']['previous_verdict']}"
        if r.get("reused_from"):
            return "worker:rescan", f"{summary}, copied from {r['reused_from']}"
    if r.get("reused_from"):
        return "worker:fan-out", f"{summary}, reused from {r['reused_from']}"
    if r["verdict"] == "timeout" and not r.get("vendor"):
        return "worker:tracker", summary  # the tracker's: no live scanner for the deadline
    if r["verdict"] == "unsupported" and not r.get("engine_version"):
        return "worker:fan-out", summary  # the orchestrator's: the type is not accepted
    return f"scanner:{r['scanner']}", summary


def _status(r: dict[str, Any]) -> tuple[str, str]:
    # The gateway (its confirm or its storage-events listener) announces uploaded and
    # rejected; the tracker does the rest.
    stage = "gateway" if r["status"] in ("uploaded", "rejected") else "worker:tracker"
    reason = f": {r['reason']}" if r.get("reason") else ""
    return stage, f"status {r['status']}{reason}"


def _reextract(r: dict[str, Any]) -> tuple[str, str]:
    return "operator", f"re-extraction requested (script {r.get('script_version') or 'active'})"


def _rescan(r: dict[str, Any]) -> tuple[str, str]:
    why = "signatures changed" if r["reason"] == "signatures" else "an operator asked"
    return "worker:rescan", (
        f"rescan requested from {r['scanner']} ({why}): was {r['previous_verdict']}"
        f" with signatures {r['previous_signatures_version'] or '-'}"
    )


DESCRIBE: dict[str, Describe] = {
    "docs_requested": _requested,
    "docs_confirmed": _confirmed,
    "docs_metadata": _metadata,
    "scan_request": _scan_request,
    "scan_verdict": _verdict,
    "docs_status": _status,
    "docs_reextract": _reextract,
    "rescan_request": _rescan,
}


def _describe(kind: str, record: dict[str, Any]) -> tuple[str, str]:
    describe = DESCRIBE.get(kind)
    if describe is None:
        return "?", kind
    try:
        return describe(record)
    except (KeyError, TypeError):
        return "?", kind


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def add_trace_verb(verbs: Any) -> None:
    verb = verbs.add_parser("trace", help="a document's whole history, from the topics")
    verb.add_argument("doc_id", metavar="DOC_ID")
    verb.add_argument("--json", action="store_true", help="one JSON object per event")
    verb.set_defaults(handler=_cmd_trace)


def _cmd_trace(args: Any) -> int:
    from ops.settings import get_settings

    try:
        doc_id = str(uuid.UUID(args.doc_id))
    except ValueError:
        raise SystemExit(f"not a document id: {args.doc_id!r}") from None
    events = trace(get_settings(), doc_id)
    for event in events:
        print(json.dumps(event.as_json()) if args.json else event.line())
    if not events and not args.json:
        print(f"no events for {doc_id}")
    return 0 if events else 1
