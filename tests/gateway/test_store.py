"""Confirm and the storage event on one row (gateway/store.py): whichever comes first, one
'uploaded' announcement, the earliest upload time, and never a step back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from gateway import store
from ops.ids import created_at_of, uuid7

pytestmark = pytest.mark.integration
SIZE = 10
PIN = store.PinnedObject("b", "k", "v1", SIZE)


@pytest.fixture
async def conn(
    pg_conninfo: str, pg_schema: tuple[Any, str]
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    _, schema = pg_schema
    async with await psycopg.AsyncConnection.connect(
        pg_conninfo, options=f"-c search_path={schema}", autocommit=True
    ) as connection:
        yield connection


async def requested(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
    doc_id = uuid7()
    doc = {
        "id": doc_id,
        "tenant": "t",
        "file_name": "a.txt",
        "file_size": SIZE,
        "content_type": None,
        "sha256": None,
        "created_at": created_at_of(doc_id),
        "upload_id": None,
    }
    await store.insert_document(conn, doc, store.OutboxEvent("docs.requested", "k", b"r"))
    return doc


def status_event(tenant: str) -> store.OutboxEvent:
    return store.OutboxEvent("docs.status", tenant, b"uploaded")


async def row(conn: psycopg.AsyncConnection[Any], doc: dict[str, Any]) -> tuple[Any, ...]:
    cur = await conn.execute(
        "SELECT process_status, uploaded_at, object_version FROM documents WHERE id = %s",
        (doc["id"],),
    )
    found = await cur.fetchone()
    assert found is not None
    return tuple(found)


async def outbox(conn: psycopg.AsyncConnection[Any]) -> list[bytes]:
    cur = await conn.execute("SELECT payload FROM outbox WHERE topic <> 'docs.requested'")
    return [bytes(r[0]) for r in await cur.fetchall()]


def announcing(found: store.Confirmation) -> list[store.OutboxEvent]:
    events = [store.OutboxEvent("docs.confirmed", "k", b"confirmed")]
    if found.announce_uploaded:
        events.append(store.OutboxEvent("docs.status", "k", b"uploaded"))
    return events


async def test_the_event_first_then_confirm_announces_once_and_keeps_its_time(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    doc = await requested(conn)
    landed = datetime.now(UTC) - timedelta(seconds=5)
    assert await store.mark_landed(conn, doc["id"], SIZE, landed, status_event)
    assert not await store.mark_landed(conn, doc["id"], SIZE, landed, status_event)  # again
    assert await row(conn, doc) == ("uploaded", landed, None)
    assert await store.mark_confirmed(conn, doc, PIN, datetime.now(UTC), announcing)
    assert await row(conn, doc) == ("uploaded", landed, "v1")
    assert await outbox(conn) == [b"uploaded", b"confirmed"]  # one 'uploaded' in all
    assert not await store.mark_confirmed(conn, doc, PIN, datetime.now(UTC), announcing)


async def test_confirm_first_then_the_event_changes_nothing(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    doc = await requested(conn)
    now = datetime.now(UTC)
    assert await store.mark_confirmed(conn, doc, PIN, now, announcing)
    assert not await store.mark_landed(conn, doc["id"], SIZE, now, status_event)
    await conn.execute("UPDATE documents SET process_status = 'done' WHERE id = %s", (doc["id"],))
    assert not await store.mark_landed(conn, doc["id"], SIZE, now, status_event)  # no step back
    assert await row(conn, doc) == ("done", now, "v1")
    assert await outbox(conn) == [b"confirmed", b"uploaded"]


async def test_another_size_or_a_rejected_document_is_not_marked(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    doc = await requested(conn)
    now = datetime.now(UTC)
    assert not await store.mark_landed(conn, doc["id"], SIZE + 1, now, status_event)
    await store.mark_rejected(conn, doc, "too big", now, status_event("t"))
    assert not await store.mark_landed(conn, doc["id"], SIZE, now, status_event)
    assert (await row(conn, doc))[0] == "rejected"
    assert not await store.mark_landed(conn, uuid7(), SIZE, now, status_event)  # no such row


async def test_progress_of_many_documents_is_read_each_under_its_tenant(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    first, second = await requested(conn), await requested(conn)
    asked = [("t", first["id"]), ("t", second["id"]), ("other", uuid7())]
    found = await store.get_progress_many(conn, [*asked, ("other", first["id"])])
    assert set(found) == {("t", first["id"]), ("t", second["id"])}  # never another tenant's
    assert found[("t", first["id"])] == {
        "process_status": "requested",
        "meta_offset": None,
        "expected_scanners": None,
    }
