"""Reads a rescan job makes: the scanner's verdicts by hour, the projection, the documents.

Blocking Cassandra reads (run them in a thread); the Postgres read is async.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cassandra.concurrent import execute_concurrent_with_args
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from ops.cql import CassandraClient
from streams.rescan.plan import Current, IndexRow


@dataclass(frozen=True)
class Document:
    """What a rescan request needs to know about a stored document."""

    id: uuid.UUID
    tenant: str
    file_name: str
    file_size: int
    file_type: str | None
    content_type: str | None
    sha256: str
    created_at: datetime
    object_version: str | None


def utc(value: datetime) -> datetime:
    """Cassandra hands timestamps back naive (they are UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def index_page(
    client: CassandraClient,
    keyspace: str,
    scope: str,
    scanner: str,
    hour: datetime,
    start: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[IndexRow]:
    """Up to ``limit`` verdicts of ``scanner`` in ``hour``, after ``start`` (end_at, doc_id)."""
    base = (
        f"SELECT end_at, doc_id, tenant, verdict, signatures_version"
        f" FROM {keyspace}.verdicts_by_scanner WHERE scope = ? AND scanner = ? AND hour = ?"
    )
    params: tuple[Any, ...]
    if start is None:
        query, params = f"{base} LIMIT ?", (scope, scanner, hour, limit)
    else:
        query = f"{base} AND (end_at, doc_id) > (?, ?) LIMIT ?"
        params = (scope, scanner, hour, start[0], start[1], limit)
    rows = client.session.execute(client.prepared(query), params)
    return [
        IndexRow(
            end_at=utc(r["end_at"]),
            doc_id=r["doc_id"],
            tenant=r["tenant"] or "",
            verdict=r["verdict"] or "",
            signatures_version=r["signatures_version"] or "",
        )
        for r in rows
    ]


def current_rows(
    client: CassandraClient, keyspace: str, scanner: str, doc_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Current]:
    """Each document's verdict by ``scanner`` as the projection shows it (absent: none)."""
    if not doc_ids:
        return {}
    query = client.prepared(
        f"SELECT doc_id, verdict, signatures_version, end_at FROM {keyspace}.verdicts"
        " WHERE doc_id = ? AND scanner = ?"
    )
    results = execute_concurrent_with_args(
        client.session,
        query,
        [(doc_id, scanner) for doc_id in doc_ids],
        concurrency=32,
        raise_on_first_error=True,
    )
    found: dict[uuid.UUID, Current] = {}
    for _, rows in results:
        for r in rows:
            found[r["doc_id"]] = Current(
                r["verdict"] or "", r["signatures_version"] or "", utc(r["end_at"])
            )
    return found


async def documents(conn: AsyncConnection[Any], ids: list[uuid.UUID]) -> dict[uuid.UUID, Document]:
    if not ids:
        return {}
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, tenant, file_name, file_size, file_type, content_type, sha256, created_at,"
        " object_version FROM documents WHERE id = ANY(%s) AND sha256 IS NOT NULL",
        (ids,),
    )
    return {row["id"]: Document(**row) for row in await cur.fetchall()}


async def same_content(
    conn: AsyncConnection[Any], tenant: str, doc_id: uuid.UUID, limit: int
) -> list[uuid.UUID]:
    """The tenant's other documents with the bytes of ``doc_id`` (newest first)."""
    cur = await conn.execute(
        "SELECT d.id FROM documents d JOIN documents o ON o.id = %s AND o.tenant = d.tenant"
        " WHERE d.tenant = %s AND d.sha256 = o.sha256 AND d.id <> o.id"
        " ORDER BY d.created_at DESC LIMIT %s",
        (doc_id, tenant, limit),
    )
    return [row[0] for row in await cur.fetchall()]
