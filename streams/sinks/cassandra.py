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
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cassandra.concurrent import execute_concurrent
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType

from ops.cql import CassandraClient
from schemas.records import ScanVerdict
from streams.sinks import UnknownSchema

TIMEOUT_PENALTY_US = 3 * 3600 * 10**6
Item = tuple[ScanVerdict, int]  # (verdict, offset)


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


def row(record: ScanVerdict, offset: int) -> tuple[Any, ...]:
    end_at = record.end_at
    timeout = record.verdict == "timeout"
    stamp = _us(end_at) - (TIMEOUT_PENALTY_US if timeout else 0)
    reused, rescan = record.reused_from, record.rescan
    return (
        uuid.UUID(record.doc_id),
        record.scanner,
        record.scanner,
        record.vendor,
        record.result,
        record.verdict,
        record.engine_version,
        record.signatures_version,
        record.start_at,
        end_at,
        uuid.UUID(reused) if reused else None,
        record.tenant,
        datetime.now(UTC),
        offset,
        offset if timeout else UNSET_VALUE,  # a real verdict leaves it as it was
        rescan.previous_verdict if rescan else None,
        rescan.reason if rescan else None,
        record.signatures_stale,
        stamp,
    )


def verdict_of(projected: Mapping[str, Any]) -> ScanVerdict:
    """The verdict a ``verdicts`` row was written from (the inverse of :func:`row`), for reuse.
    What a rescan replaced is kept only in part, so ``rescan`` is None: a reuse is no rescan."""
    reused = projected.get("reused_from")
    return ScanVerdict(
        doc_id=str(projected["doc_id"]),
        tenant=projected.get("tenant") or "",
        scanner=projected["scanner"],
        vendor=projected.get("vendor") or "",
        verdict=projected["verdict"],
        result=projected.get("scan_result") or "",
        engine_version=projected.get("engine_version") or "",
        signatures_version=projected.get("signatures_version") or "",
        start_at=_utc(projected["start_at"]),
        end_at=_utc(projected["end_at"]),
        reused_from=None if reused is None else str(reused),
        signatures_stale=bool(projected.get("signatures_stale")),
    )


def _utc(value: datetime) -> datetime:
    """Cassandra timestamps are UTC and come back naive."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def history_row(record: ScanVerdict, offset: int) -> tuple[Any, ...]:
    reused, rescan = record.reused_from, record.rescan
    return (
        uuid.UUID(record.doc_id),
        record.scanner,
        record.end_at,
        record.start_at,
        record.vendor,
        record.verdict,
        record.result,
        record.engine_version,
        record.signatures_version,
        uuid.UUID(reused) if reused else None,
        rescan.previous_verdict if rescan else None,
        rescan.reason if rescan else None,
        record.signatures_stale,
        offset,
    )


def index_row(record: ScanVerdict, scope: str) -> tuple[Any, ...] | None:
    """The row listing this verdict by scanner and hour; None for a timeout (not scanned)."""
    if record.verdict == "timeout":
        return None
    end_at = record.end_at
    hour = end_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return (
        scope,
        record.scanner,
        hour,
        end_at,
        uuid.UUID(record.doc_id),
        record.tenant,
        record.verdict,
        record.signatures_version,
    )


# A batch of one partition holds up to this many bytes of values (estimated: see
# :func:`_bytes`).  Cassandra warns above ``batch_size_warn_threshold`` (32 KiB, set in
# ops/services/cassandra.py) and refuses above 50 KiB.  A verdict and its history row are
# ~0.6 KB (more with a long result: the runner keeps 2,000 characters), so a document's twenty
# verdicts usually go in one request.  A round of requests waits for the commit log's sync and
# the next round waits for it: rounds, not rows, are what delays the projection.
BATCH_BYTES = 24 * 1024
STATEMENT_OVERHEAD = 64  # a row's keys, timestamps and framing, beside its text
Statement = tuple[Any, tuple[Any, ...]]


def _bytes(values: tuple[Any, ...]) -> int:
    """A row's size, from above: its text (4 bytes a character unless ASCII), 16 bytes for
    any other value, and framing."""
    return STATEMENT_OVERHEAD + sum(_text_bytes(v) if isinstance(v, str) else 16 for v in values)


def _text_bytes(text: str) -> int:
    return len(text) if text.isascii() else 4 * len(text)  # isascii(): no scan, a flag


def _chunks(pairs: list[list[Statement]]) -> list[list[Statement]]:
    """Pairs (a verdict and its history row) in order, into chunks of up to
    :data:`BATCH_BYTES`; a pair is never split."""
    chunks: list[list[Statement]] = []
    size = BATCH_BYTES + 1  # the first pair opens a chunk
    for pair in pairs:
        pair_size = sum(_bytes(values) for _, values in pair)
        if size + pair_size > BATCH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].extend(pair)
        size += pair_size
    return chunks


def document_rounds(batch: list[Item], insert: Any, history: Any) -> list[list[list[Statement]]]:
    """Round k holds each document's k-th chunk of rows (its verdicts by offset, each with its
    history row).  A batch of one partition is applied at once, and a document's chunks go in
    successive rounds, so its verdicts become readable in offset order, which is what the SSE
    resume cursor relies on; documents are written side by side."""
    per_doc: dict[str, list[list[Statement]]] = {}
    for record, offset in sorted(batch, key=lambda item: item[1]):
        pair = [(insert, row(record, offset)), (history, history_row(record, offset))]
        per_doc.setdefault(record.doc_id, []).append(pair)
    chunks = [_chunks(pairs) for pairs in per_doc.values()]
    depth = max((len(c) for c in chunks), default=0)
    return [[c[k] for c in chunks if k < len(c)] for k in range(depth)]


# Index rows per batch.  A row is ~150 bytes; a batch spans many partitions (one per scanner
# and hour), so Cassandra warns above ``unlogged_batch_across_partitions_warn_threshold``
# (set to this in ops/services/cassandra.py).
INDEX_BATCH_ROWS = 32


def index_chunks(batch: list[Item], index: Any, scope: str) -> list[list[Statement]]:
    """The index rows, sorted by their partition (scanner and hour), in chunks that span
    partitions.  One batch per partition was ~20 requests a document (a document's verdicts
    are in 20 partitions, and a batch of the materializer holds a few documents); per
    request, Cassandra and the driver spent three times the CPU of a row in a shared batch
    (measured: 2.0 -> 0.6 ms a document each).  Nothing reads these rows in order with the
    others: a rescan lists them hours later."""
    listed = [(index, values) for record, _ in batch if (values := index_row(record, scope))]
    listed.sort(key=lambda statement: (statement[1][1], statement[1][2]))
    return [listed[i : i + INDEX_BATCH_ROWS] for i in range(0, len(listed), INDEX_BATCH_ROWS)]


def _unlogged(statements: list[Statement]) -> tuple[BatchStatement, None]:
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    for statement, values in statements:
        batch.add(statement, values)
    return batch, None


def write(client: CassandraClient, keyspace: str, batch: list[Item], scope: str = "") -> int:
    """Write a batch (blocking: run it in a thread); raises on any failure.  ``scope``: the
    deployment's topic prefix (see :func:`index_row`).

    Rows go in unlogged batches of one partition each: one request per document and chunk
    instead of three per verdict (Cassandra's CPU per document is mostly per request), and
    usually one round of requests per batch.
    A record that is not a verdict raises :class:`UnknownSchema` before anything is written."""
    for record, _ in batch:
        if not isinstance(record, ScanVerdict):
            schema = getattr(record, "SCHEMA", type(record).__name__)
            raise UnknownSchema(f"the verdicts projection has no rule for schema {schema!r}")
    insert = client.prepared(insert_query(keyspace))
    history = client.prepared(history_query(keyspace))
    index = client.prepared(index_query(keyspace))
    waves = document_rounds(batch, insert, history)
    rounds = [[_unlogged(chunk) for chunk in wave] for wave in waves]
    listed = [_unlogged(chunk) for chunk in index_chunks(batch, index, scope)]
    # The index rows go with the first round: no reader needs them in order with the others.
    _execute(client, (rounds[0] if rounds else []) + listed)
    for wave in rounds[1:]:
        _execute(client, wave)
    return len(batch)


def _execute(client: CassandraClient, requests: list[tuple[BatchStatement, None]]) -> None:
    if requests:
        execute_concurrent(client.session, requests, concurrency=64, raise_on_first_error=True)
