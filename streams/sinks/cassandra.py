"""Cassandra sink: projects scan.verdicts onto ``verdicts``, one row per (document, scanner).

The write timestamp is the verdict's end time, so the newest verdict of a scanner wins
whatever order events are replayed in; a ``timeout`` is written a few hours in the past so a
real verdict always replaces it, whichever comes first on the topic.  A timeout also writes
its own offset to ``timeout_offset``, a column no real verdict touches: the gateway shows a
verdict that came after it as ``late``.

Each verdict is also kept in ``verdict_history`` (every verdict a document was given, for
scan-results' earlier verdicts) and, unless a timeout, listed in ``verdicts_by_scanner`` by
hour under the deployment's ``scope`` (what a rescan job reads; streams/rescan/).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.query import UNSET_VALUE

from ops.cql import CassandraClient

TIMEOUT_PENALTY_US = 3 * 3600 * 10**6
Item = tuple[dict[str, Any], int]  # (verdict record, offset)


def insert_query(keyspace: str) -> str:
    return (
        f"INSERT INTO {keyspace}.verdicts (doc_id, scanner, scanner_name, vendor, scan_result,"
        " verdict, engine_version, signatures_version, start_at, end_at, reused_from, tenant,"
        " updated_at, kafka_offset, timeout_offset, rescan_previous, rescan_reason,"
        " signatures_stale)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " USING TIMESTAMP ?"
    )


def history_query(keyspace: str) -> str:
    return (
        f"INSERT INTO {keyspace}.verdict_history (doc_id, scanner, end_at, start_at, vendor,"
        " verdict, scan_result, engine_version, signatures_version, reused_from,"
        " rescan_previous, rescan_reason, signatures_stale, kafka_offset)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )


def index_query(keyspace: str) -> str:
    return (
        f"INSERT INTO {keyspace}.verdicts_by_scanner (scope, scanner, hour, end_at, doc_id,"
        " tenant, verdict, signatures_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )


def _us(value: datetime) -> int:
    return int(value.timestamp() * 10**6)


def row(record: dict[str, Any], offset: int) -> tuple[Any, ...]:
    end_at: datetime = record["end_at"]
    timeout = record["verdict"] == "timeout"
    stamp = _us(end_at) - (TIMEOUT_PENALTY_US if timeout else 0)
    reused = record.get("reused_from")
    rescan = record.get("rescan") or {}
    return (
        uuid.UUID(record["doc_id"]),
        record["scanner"],
        record["scanner"],
        record["vendor"],
        record["result"],
        record["verdict"],
        record["engine_version"],
        record["signatures_version"],
        record["start_at"],
        end_at,
        uuid.UUID(reused) if reused else None,
        record["tenant"],
        datetime.now(UTC),
        offset,
        offset if timeout else UNSET_VALUE,  # a real verdict leaves it as it was
        rescan.get("previous_verdict"),
        rescan.get("reason"),
        bool(record.get("signatures_stale")),
        stamp,
    )


def history_row(record: dict[str, Any], offset: int) -> tuple[Any, ...]:
    reused, rescan = record.get("reused_from"), record.get("rescan") or {}
    return (
        uuid.UUID(record["doc_id"]),
        record["scanner"],
        record["end_at"],
        record["start_at"],
        record["vendor"],
        record["verdict"],
        record["result"],
        record["engine_version"],
        record["signatures_version"],
        uuid.UUID(reused) if reused else None,
        rescan.get("previous_verdict"),
        rescan.get("reason"),
        bool(record.get("signatures_stale")),
        offset,
    )


def index_row(record: dict[str, Any], scope: str) -> tuple[Any, ...] | None:
    """The row listing this verdict by scanner and hour; None for a timeout (not scanned)."""
    if record["verdict"] == "timeout":
        return None
    end_at: datetime = record["end_at"]
    hour = end_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return (
        scope,
        record["scanner"],
        hour,
        end_at,
        uuid.UUID(record["doc_id"]),
        record["tenant"],
        record["verdict"],
        record["signatures_version"],
    )


def waves(batch: list[Item]) -> list[list[Item]]:
    """Wave k holds each document's k-th verdict (by offset): documents are written in
    parallel, but one document's verdicts become readable in offset order, which is what the
    SSE resume cursor relies on."""
    per_doc: dict[str, list[Item]] = {}
    for item in sorted(batch, key=lambda item: item[1]):
        per_doc.setdefault(item[0]["doc_id"], []).append(item)
    depth = max((len(items) for items in per_doc.values()), default=0)
    return [[items[k] for items in per_doc.values() if k < len(items)] for k in range(depth)]


def write(client: CassandraClient, keyspace: str, batch: list[Item], scope: str = "") -> int:
    """Write a batch (blocking: run it in a thread); raises on any failure.  ``scope``: the
    deployment's topic prefix (see :func:`index_row`)."""
    statement = client.prepared(insert_query(keyspace))
    for wave in waves(batch):
        execute_concurrent_with_args(
            client.session,
            statement,
            [row(r, o) for r, o in wave],
            concurrency=64,
            raise_on_first_error=True,
        )
    history, index = (
        client.prepared(history_query(keyspace)),
        client.prepared(index_query(keyspace)),
    )
    extra = [(history, history_row(r, o)) for r, o in batch]
    extra += [(index, listed) for r, _ in batch if (listed := index_row(r, scope)) is not None]
    execute_concurrent(client.session, extra, concurrency=64, raise_on_first_error=True)
    return len(batch)
