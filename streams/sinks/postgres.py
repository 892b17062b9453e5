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

Item = tuple[str, dict[str, Any], int]  # (schema, record, offset)


class UnknownSchema(ValueError):
    """A record of a schema a sink does not project."""


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


def statement(schema: str, r: dict[str, Any], offset: int) -> tuple[str, tuple[Any, ...]]:
    doc_id = uuid.UUID(r["doc_id"])
    created = created_at_of(doc_id)
    if schema == "docs_requested":
        return _REQUESTED, (
            doc_id,
            r["tenant"],
            r["file_name"],
            r["file_size"],
            r.get("content_type"),
            r.get("sha256"),
            created,
            created,
        )
    if schema == "docs_confirmed":
        return _CONFIRMED, (
            r["uploaded_at"],
            r["file_size"],
            r.get("version_id"),
            r["uploaded_at"],
            doc_id,
            created,
        )
    if schema == "docs_metadata":
        return _METADATA, (
            r["sha256"],
            r["file_type"],
            Jsonb(visible_meta(r)),
            r["script_version"],
            offset,
            r["at"],
            doc_id,
            created,
            offset,
        )
    if schema == "docs_status":
        return _STATUS, (
            r["status"],
            r.get("reason"),
            r.get("expected"),
            r["at"],
            r["status"],
            r["at"],
            doc_id,
            created,
            r["status"],
        )
    # A schema this sink does not know is a contract change it was not updated for: fail loudly
    # (the materializer isolates the record and sends it to the dead-letter topic with this).
    raise UnknownSchema(f"the documents projection has no rule for schema {schema!r}")


def visible_meta(record: dict[str, Any]) -> dict[str, Any]:
    meta = dict(record.get("meta") or {})
    meta["mime_type"] = record.get("mime_type")
    meta["extraction_ms"] = record.get("duration_ms")
    if record.get("error"):
        meta["extraction_error"] = record["error"]
    return meta


async def write(conn: AsyncConnection[Any], batch: list[Item]) -> int:
    """Apply a batch in one transaction, in offset order per topic; returns rows touched."""
    touched = 0
    async with conn.transaction(), conn.cursor() as cur:
        for schema, record, offset in batch:
            query, params = statement(schema, record, offset)
            await cur.execute(query, params)
            touched += max(cur.rowcount, 0)
    return touched
