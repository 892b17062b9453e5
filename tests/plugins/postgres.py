"""Postgres fixtures: the live server's DSN, and a freshly migrated schema per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ops.bootstrap.postgres import drop_schema, migrate
from ops.settings import Settings


@pytest.fixture(scope="session")
def pg_conninfo(settings: Settings) -> str:
    """The application's DSN, once it is known to answer."""
    try:
        with psycopg.connect(settings.postgres.dsn, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        pytest.fail(
            f"Postgres is not reachable at {settings.postgres.host}:{settings.postgres.port} "
            f"({exc}); run `intellidox up postgres`",
            pytrace=False,
        )
    return settings.postgres.dsn


@pytest.fixture
def pg_schema(pg_conninfo: str, run_id: str) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    """A connection (autocommit) and a schema named ``run_id``, migrated, dropped afterwards."""
    with psycopg.connect(pg_conninfo, autocommit=True) as conn:
        migrate(conn, run_id)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(run_id)))
        try:
            yield conn, run_id
        finally:
            conn.execute("RESET search_path")
            drop_schema(conn, run_id)
