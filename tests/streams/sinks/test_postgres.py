"""The Postgres sink on a real database: idempotent, forward-only, replay-safe."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ops.ids import created_at_of, uuid7
from schemas.documents import (
    DocsConfirmed,
    DocsMetadata,
    DocsRequested,
    DocsStatus,
    MetaValue,
)
from schemas.record import Record
from streams.sinks.postgres import write

pytestmark = pytest.mark.integration


Item = tuple[Record, int]


def _events(doc_id: str) -> list[Item]:
    now = datetime.now(UTC)
    created = created_at_of(uuid7())
    meta: dict[str, MetaValue] = {"pdf_pages": 2}
    metadata = DocsMetadata(
        doc_id, "t", "ab" * 32, 10, "pdf", "application/pdf", meta, "v1", 5, None, False, now
    )
    return [
        (DocsRequested(doc_id, "t", "a.pdf", 10, None, None, created), 0),
        (DocsConfirmed(doc_id, "t", "a.pdf", 10, None, "b", doc_id, created, now), 0),
        (metadata, 7),
        (DocsStatus(doc_id, "t", "in_progress", None, 3, now), 1),
        (DocsStatus(doc_id, "t", "done", None, 3, now), 2),
    ]


async def _row(conninfo: str, schema: str, doc_id: str) -> tuple[Any, ...]:
    async with await psycopg.AsyncConnection.connect(
        conninfo, options=f"-c search_path={schema}"
    ) as conn:
        cur = await conn.execute(
            "SELECT process_status, sha256, file_type, meta_data, expected_scanners, meta_offset,"
            " uploaded_at IS NOT NULL FROM documents WHERE id = %s",
            (doc_id,),
        )
        row = await cur.fetchone()
        assert row is not None
        return tuple(row)


async def _apply(conninfo: str, schema: str, batch: list[Item]) -> None:
    async with await psycopg.AsyncConnection.connect(
        conninfo, options=f"-c search_path={schema}"
    ) as conn:
        await write(conn, batch)


async def test_events_project_onto_one_row_and_replays_change_nothing(
    pg_conninfo: str, pg_schema: tuple[Any, str]
) -> None:
    _, schema = pg_schema
    doc_id = str(uuid7())
    events = _events(doc_id)
    await _apply(pg_conninfo, schema, events)
    first = await _row(pg_conninfo, schema, doc_id)
    assert first[0] == "done" and first[1] == "ab" * 32 and first[2] == "pdf"
    assert first[3]["pdf_pages"] == 2 and first[3]["mime_type"] == "application/pdf"
    assert first[4] == 3 and first[5] == 7 and first[6] is True
    await _apply(pg_conninfo, schema, events)  # redelivery
    await _apply(pg_conninfo, schema, [events[3]])  # an older status arriving late
    assert await _row(pg_conninfo, schema, doc_id) == first


async def test_older_metadata_never_replaces_newer(
    pg_conninfo: str, pg_schema: tuple[Any, str]
) -> None:
    _, schema = pg_schema
    doc_id = str(uuid7())
    events = _events(doc_id)
    await _apply(pg_conninfo, schema, events)
    metadata = events[2][0]
    assert isinstance(metadata, DocsMetadata)
    older = (replace(metadata, meta={"pdf_pages": 99}), 3)
    await _apply(pg_conninfo, schema, [older])
    assert (await _row(pg_conninfo, schema, doc_id))[3]["pdf_pages"] == 2


async def test_a_storage_events_uploaded_status_carries_uploaded_at_and_confirm_keeps_it(
    pg_conninfo: str, pg_schema: tuple[Any, str]
) -> None:
    """Replay of a document uploaded by a storage event, then confirmed: the event's time."""
    _, schema = pg_schema
    doc_id = str(uuid7())
    requested, confirmed = _events(doc_id)[:2]
    landed = datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC)
    uploaded = (DocsStatus(doc_id, "t", "uploaded", None, None, landed), 0)
    await _apply(pg_conninfo, schema, [requested, uploaded])
    async with await psycopg.AsyncConnection.connect(
        pg_conninfo, options=f"-c search_path={schema}"
    ) as conn:
        read = "SELECT process_status, uploaded_at FROM documents WHERE id = %s"
        assert await (await conn.execute(read, (doc_id,))).fetchone() == ("uploaded", landed)
        await write(conn, [confirmed])  # confirm's later time does not replace it
        assert await (await conn.execute(read, (doc_id,))).fetchone() == ("uploaded", landed)
