"""The gateway's reads and writes on Postgres.

Every write that must also become a Kafka event goes into the ``outbox`` table in the same
transaction; the relay (:mod:`gateway.outbox`) publishes it.  So a document row and its event
can never diverge: both commit or neither does.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ops.ids import created_at_of

_DOC_COLUMNS = (
    "id, tenant, file_name, file_size, file_type, content_type, sha256, created_at, "
    "uploaded_at, updated_at, process_status, meta_data, script_version, upload_id,"
    " expected_scanners, meta_offset, status_reason, object_version"
)


@dataclass(frozen=True)
class PinnedObject:
    """The stored object as confirm checked it: every later reader reads this version."""

    bucket: str
    key: str
    version_id: str
    size: int


@dataclass(frozen=True)
class OutboxEvent:
    topic: str
    key: str
    payload: bytes


async def insert_document(
    conn: AsyncConnection[Any],
    doc: dict[str, Any],
    event: OutboxEvent,
    guard: Callable[[AsyncConnection[Any]], Awaitable[None]] | None = None,
) -> None:
    """``guard`` runs first in the same transaction (the uploads-in-progress limit)."""
    async with conn.transaction():
        if guard is not None:
            await guard(conn)
        await conn.execute(
            "INSERT INTO documents (id, tenant, file_name, file_size, content_type, sha256,"
            " created_at, updated_at, process_status, meta_data, upload_id)"
            " VALUES (%(id)s, %(tenant)s, %(file_name)s, %(file_size)s, %(content_type)s,"
            " %(sha256)s, %(created_at)s, %(created_at)s, 'requested', '{}'::jsonb, %(upload_id)s)",
            doc,
        )
        await _add_outbox(conn, event)


async def _add_outbox(conn: AsyncConnection[Any], event: OutboxEvent) -> None:
    await conn.execute(
        "INSERT INTO outbox (topic, key, payload) VALUES (%s, %s, %s)",
        (event.topic, event.key, event.payload),
    )
    await conn.execute("NOTIFY outbox")


async def get_document(
    conn: AsyncConnection[Any], tenant: str, doc_id: uuid.UUID
) -> dict[str, Any] | None:
    """One document of this tenant; the id's embedded time pins the partition."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_DOC_COLUMNS} FROM documents WHERE id = %s AND created_at = %s AND tenant = %s",
        (doc_id, created_at_of(doc_id), tenant),
        prepare=True,
    )
    return await cur.fetchone()


async def find_reusable(
    conn: AsyncConnection[Any], tenant: str, sha256: str, window: timedelta, now: datetime
) -> dict[str, Any] | None:
    """The newest finished document of this tenant with these bytes, within the window."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_DOC_COLUMNS} FROM documents WHERE tenant = %s AND sha256 = %s"
        " AND process_status = 'done' AND updated_at >= %s"
        " ORDER BY updated_at DESC LIMIT 1",
        (tenant, sha256, now - window),
    )
    return await cur.fetchone()


async def mark_confirmed(
    conn: AsyncConnection[Any],
    doc: dict[str, Any],
    pin: PinnedObject,
    uploaded_at: datetime,
    events: list[OutboxEvent],
) -> bool:
    """Move requested → uploaded once, pinning the object version; False when another
    confirm won the race."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE documents SET process_status = 'uploaded', uploaded_at = %s, updated_at = %s,"
            " object_version = %s"
            " WHERE id = %s AND created_at = %s AND process_status = 'requested'",
            (uploaded_at, uploaded_at, pin.version_id, doc["id"], doc["created_at"]),
        )
        if cur.rowcount != 1:
            return False
        for event in events:
            await _add_outbox(conn, event)
    return True


async def mark_rejected(
    conn: AsyncConnection[Any],
    doc: dict[str, Any],
    reason: str,
    now: datetime,
    event: OutboxEvent,
) -> None:
    async with conn.transaction():
        await conn.execute(
            "UPDATE documents SET process_status = 'rejected', updated_at = %s,"
            " meta_data = meta_data || %s WHERE id = %s AND created_at = %s"
            " AND process_status = 'requested'",
            (now, Jsonb({"rejected_reason": reason}), doc["id"], doc["created_at"]),
        )
        await _add_outbox(conn, event)
