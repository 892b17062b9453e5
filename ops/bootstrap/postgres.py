"""Versioned Postgres migrations: numbered ``.sql`` files in ``ops/bootstrap/postgres/``.

Each file runs once per schema, in its own transaction, with ``search_path`` set to the
schema, and is recorded in ``<schema>.schema_migrations``.  Tests migrate a throw-away schema
per test; the application uses ``public``.  Re-running :func:`migrate` applies only what is
new, then makes sure the coming months' ``documents`` partitions exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

MIGRATIONS_DIR = Path(__file__).with_suffix("")  # ops/bootstrap/postgres/
PARTITION_MONTHS_AHEAD = 3
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a misnamed ``.sql`` file is an error."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name} is not named NNNN_description.sql")
        found.append(Migration(match.group(1), path.stem, path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {directory}")
    return found


def migrate(conn: psycopg.Connection[Any], schema: str = "public") -> list[str]:
    """Bring ``schema`` up to date; returns the versions applied now (empty when current)."""
    schema_id = sql.Identifier(schema)
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema_id))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                " version text PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(schema_id)
        )
    applied = [m.version for m in migrations() if _apply(conn, schema, m)]
    ensure_partitions(conn, schema)
    return applied


def _apply(conn: psycopg.Connection[Any], schema: str, migration: Migration) -> bool:
    schema_id = sql.Identifier(schema)
    with conn.transaction():
        # Two processes migrating at once: the second waits, then sees the row and skips.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"migrate:{schema}"])
        done = conn.execute(
            sql.SQL("SELECT 1 FROM {}.schema_migrations WHERE version = %s").format(schema_id),
            [migration.version],
        ).fetchone()
        if done is not None:
            return False
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(schema_id))
        # Bytes: a multi-statement script, sent as is (no parameters, so no % escaping).
        conn.execute(migration.path.read_bytes())
        conn.execute(
            sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (%s, %s)").format(
                schema_id
            ),
            [migration.version, migration.name],
        )
    return True


def ensure_partitions(
    conn: psycopg.Connection[Any],
    schema: str = "public",
    months_ahead: int = PARTITION_MONTHS_AHEAD,
) -> int:
    """Create missing monthly ``documents`` partitions; returns how many were created."""
    with conn.transaction():
        row = conn.execute(
            sql.SQL("SELECT {}.ensure_document_partitions(%s)").format(sql.Identifier(schema)),
            [months_ahead],
        ).fetchone()
    return int(row[0]) if row else 0


def drop_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Drop ``schema`` and everything in it (tests' throw-away schemas)."""
    if schema == "public":
        raise ValueError("refusing to drop the public schema")
    with conn.transaction():
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
