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
    return await _one_document(conn, _DOC_COLUMNS, tenant, doc_id)


# What read-after-done compares (gateway/readafter.py): a stream waiting for ``done`` polls
# these, not the whole row with its metadata.
PROGRESS_COLUMNS = ("process_status", "meta_offset", "expected_scanners")


async def get_progress_many(
    conn: AsyncConnection[Any], docs: list[tuple[str, uuid.UUID]]
) -> dict[tuple[str, uuid.UUID], dict[str, Any]]:
    """The :data:`PROGRESS_COLUMNS` of many documents, each under its tenant (a document of
    another tenant is not found), in one query."""
    ids = [doc_id for _, doc_id in docs]
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT tenant, id, {', '.join(PROGRESS_COLUMNS)} FROM documents"
        " WHERE id = ANY(%s) AND created_at = ANY(%s)",
        (ids, [created_at_of(doc_id) for doc_id in ids]),
    )
    wanted = set(docs)
    found = {(row.pop("tenant"), row.pop("id")): row for row in await cur.fetchall()}
    return {key: row for key, row in found.items() if key in wanted}


async def _one_document(
    conn: AsyncConnection[Any], columns: str, tenant: str, doc_id: uuid.UUID
) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {columns} FROM documents WHERE id = %s AND created_at = %s AND tenant = %s",
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


@dataclass(frozen=True)
class Confirmation:
    """What confirm found: when the bytes landed, and whether the row still said 'requested'
    (else a storage event announced 'uploaded' already and confirm must not again)."""

    uploaded_at: datetime
    announce_uploaded: bool


async def mark_confirmed(
    conn: AsyncConnection[Any],
    doc: dict[str, Any],
    pin: PinnedObject,
    now: datetime,
    events: Callable[[Confirmation], list[OutboxEvent]],
) -> bool:
    """Pin the object version once, moving requested → uploaded unless a storage event did
    (gateway/storage_events.py; its ``uploaded_at`` is kept); False when another confirm won
    the race.  The row lock orders this against the storage event's update."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT process_status, uploaded_at FROM documents WHERE id = %s AND created_at = %s"
            " AND object_version IS NULL AND process_status IN ('requested', 'uploaded')"
            " FOR UPDATE",
            (doc["id"], doc["created_at"]),
        )
        row = await cur.fetchone()
        if row is None:
            return False
        found = Confirmation(row[1] or now, announce_uploaded=row[0] == "requested")
        await conn.execute(
            "UPDATE documents SET process_status = 'uploaded', uploaded_at = %s,"
            " updated_at = GREATEST(updated_at, %s), object_version = %s"
            " WHERE id = %s AND created_at = %s",
            (found.uploaded_at, now, pin.version_id, doc["id"], doc["created_at"]),
        )
        for event in events(found):
            await _add_outbox(conn, event)
    return True


async def mark_landed(
    conn: AsyncConnection[Any],
    doc_id: uuid.UUID,
    size: int,
    landed_at: datetime,
    event: Callable[[str], OutboxEvent],
) -> bool:
    """A storage event: requested → uploaded when the stored size is the declared one, with
    ``event(tenant)`` in the outbox; False (nothing written) for any other document state,
    so a redelivered event, a second listener or a confirm that came first changes nothing."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE documents SET process_status = 'uploaded', uploaded_at = %s,"
            " updated_at = GREATEST(updated_at, %s)"
            " WHERE id = %s AND created_at = %s AND process_status = 'requested'"
            " AND file_size = %s RETURNING tenant",
            (landed_at, landed_at, doc_id, created_at_of(doc_id), size),
        )
        row = await cur.fetchone()
        if row is None:
            return False
        await _add_outbox(conn, event(row[0]))
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
            " AND process_status IN ('requested', 'uploaded') AND object_version IS NULL",
            (now, Jsonb({"rejected_reason": reason}), doc["id"], doc["created_at"]),
        )
        await _add_outbox(conn, event)
