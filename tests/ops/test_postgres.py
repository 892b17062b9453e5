"""Postgres: the documents table, its monthly partitions and re-runnable migrations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from ops.bootstrap.postgres import PARTITION_MONTHS_AHEAD, migrate, migrations

PgSchema = tuple[psycopg.Connection[Any], str]


def _month_starts(count: int) -> list[str]:
    now = datetime.now(UTC)
    names = []
    for i in range(count):
        year, month = divmod(now.month - 1 + i, 12)
        names.append(f"documents_{now.year + year:04d}_{month + 1:02d}")
    return names


def _insert(conn: psycopg.Connection[Any], created_at: datetime | None = None) -> uuid.UUID:
    doc_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO documents (id, tenant, file_name, file_size, file_type, content_type, sha256,"
        " created_at, uploaded_at, process_status, script_version, meta_data)"
        " VALUES (%s, 'acme', 'a.pdf', 42, 'pdf', 'application/pdf', %s,"
        " coalesce(%s, now()), now(), 'uploaded', 'v1', %s)",
        [doc_id, "ab" * 32, created_at, Jsonb({"source": "test"})],
    )
    return doc_id


def test_migration_files_are_well_named() -> None:
    assert migrations()[0].version == "0001"


@pytest.mark.integration
def test_insert_and_read_document(pg_schema: PgSchema) -> None:
    conn, _ = pg_schema
    doc_id = _insert(conn)
    row = conn.execute(
        "SELECT tenant, file_size, meta_data, tableoid::regclass::text FROM documents"
        " WHERE tenant = 'acme' AND sha256 = %s",
        ["ab" * 32],
    ).fetchone()
    assert row is not None
    assert row[:3] == ("acme", 42, {"source": "test"})
    assert row[3] == _month_starts(1)[0]  # routed to this month's partition
    assert conn.execute("SELECT count(*) FROM documents WHERE id = %s", [doc_id]).fetchone() == (1,)


@pytest.mark.integration
def test_partitions_this_month_and_ahead(pg_schema: PgSchema) -> None:
    conn, schema = pg_schema
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
        [schema],
    ).fetchall()
    names = {r[0] for r in rows}
    assert set(_month_starts(PARTITION_MONTHS_AHEAD + 1)) <= names
    assert "documents_default" in names


@pytest.mark.integration
def test_out_of_range_row_lands_in_default_then_moves(pg_schema: PgSchema) -> None:
    conn, _ = pg_schema
    far = datetime(2031, 5, 17, tzinfo=UTC)
    doc_id = _insert(conn, far)
    where = conn.execute("SELECT tableoid::regclass::text FROM documents WHERE id = %s", [doc_id])
    assert where.fetchone() == ("documents_default",)
    # Creating the partitions up to that month moves the row out of the default partition.
    months = (far.year - datetime.now(UTC).year) * 12 + far.month - datetime.now(UTC).month
    conn.execute("SELECT ensure_document_partitions(%s)", [months])
    where = conn.execute("SELECT tableoid::regclass::text FROM documents WHERE id = %s", [doc_id])
    assert where.fetchone() == ("documents_2031_05",)


@pytest.mark.integration
def test_migrate_twice_is_idempotent(pg_schema: PgSchema) -> None:
    conn, schema = pg_schema
    _insert(conn)
    assert migrate(conn, schema) == []
    assert conn.execute("SELECT ensure_document_partitions(%s)", [3]).fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM documents").fetchone() == (1,)
    versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
    assert [v[0] for v in versions] == [m.version for m in migrations()]


@pytest.mark.integration
def test_outbox_row(pg_schema: PgSchema) -> None:
    conn, _ = pg_schema
    row = conn.execute(
        "INSERT INTO outbox (topic, key, payload) VALUES ('documents', 'k', %s)"
        " RETURNING id, headers, published_at",
        [b"\x00avro"],
    ).fetchone()
    assert row is not None and row[1:] == ({}, None)
