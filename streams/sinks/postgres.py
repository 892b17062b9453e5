"""Postgres sink: projects docs.* events onto ``documents``, idempotently.

Every write is an upsert guarded so that redelivery and replay are harmless: inserts do
nothing on conflict, a status only moves forward (``status_rank``), and metadata only
replaces metadata from an earlier offset.  The id's embedded time pins the partition.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ops.ids import created_at_of
from schemas.documents import DocsConfirmed, DocsMetadata, DocsRequested, DocsStatus
from schemas.record import Record
from streams.sinks import UnknownSchema

Item = tuple[Record, int]  # (record, offset)


_REQUESTED = (
    "INSERT INTO documents (id, tenant, file_name, file_size, content_type, sha256, created_at,"
    " updated_at, process_status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'requested')"
    " ON CONFLICT (id, created_at) DO NOTHING"
)
_CONFIRMED = (
    "UPDATE documents SET uploaded_at = COALESCE(uploaded_at, %s), file_size = %s,"
    " object_version = COALESCE(object_version, %s),"
    " process_status = CASE WHEN status_rank(process_status) < 1 THEN 'uploaded'"
    " ELSE process_status END, updated_at = GREATEST(updated_at, %s)"
    " WHERE id = %s AND created_at = %s"
)
_METADATA = (
    "UPDATE documents SET sha256 = %s, file_type = %s, meta_data = %s, script_version = %s,"
    " meta_offset = %s, updated_at = GREATEST(updated_at, %s)"
    " WHERE id = %s AND created_at = %s AND (meta_offset IS NULL OR meta_offset < %s)"
)
# 'uploaded' carries when the bytes landed (a storage event's or confirm's time): replay
# rebuilds uploaded_at from it even for a document never confirmed.
_STATUS = (
    "UPDATE documents SET process_status = %s, status_reason = %s,"
    " expected_scanners = COALESCE(%s, expected_scanners), updated_at = GREATEST(updated_at, %s),"
    " uploaded_at = CASE WHEN %s = 'uploaded' THEN COALESCE(uploaded_at, %s) ELSE uploaded_at END"
    " WHERE id = %s AND created_at = %s AND status_rank(process_status) < status_rank(%s)"
)


def statement(record: Record, offset: int) -> tuple[str, tuple[Any, ...]]:
    doc_id = uuid.UUID(getattr(record, "doc_id", ""))
    created = created_at_of(doc_id)
    match record:
        case DocsRequested():
            return _REQUESTED, (
                doc_id,
                record.tenant,
                record.file_name,
                record.file_size,
                record.content_type,
                record.sha256,
                created,
                created,
            )
        case DocsConfirmed():
            return _CONFIRMED, (
                record.uploaded_at,
                record.file_size,
                record.version_id,
                record.uploaded_at,
                doc_id,
                created,
            )
        case DocsMetadata():
            return _METADATA, (
                record.sha256,
                record.file_type,
                Jsonb(visible_meta(record)),
                record.script_version,
                offset,
                record.at,
                doc_id,
                created,
                offset,
            )
        case DocsStatus():
            return _STATUS, (
                record.status,
                record.reason,
                record.expected,
                record.at,
                record.status,
                record.at,
                doc_id,
                created,
                record.status,
            )
    # A record this sink does not know is a contract change it was not updated for: fail loudly
    # (the materializer isolates the record and sends it to the dead-letter topic with this).
    raise UnknownSchema(f"the documents projection has no rule for schema {record.SCHEMA!r}")


def visible_meta(record: DocsMetadata) -> dict[str, Any]:
    """What the API shows as ``meta``: the script's free-form findings, and how it went."""
    meta: dict[str, Any] = dict(record.meta)
    meta["mime_type"] = record.mime_type
    meta["extraction_ms"] = record.duration_ms
    if record.error:
        meta["extraction_error"] = record.error
    return meta


async def write(conn: AsyncConnection[Any], batch: list[Item]) -> int:
    """Apply a batch in one transaction, in offset order per topic; returns rows touched."""
    touched = 0
    async with conn.transaction(), conn.cursor() as cur:
        for record, offset in batch:
            query, params = statement(record, offset)
            await cur.execute(query, params)
            touched += max(cur.rowcount, 0)
    return touched
