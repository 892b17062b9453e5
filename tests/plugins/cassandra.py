"""Fixtures for Cassandra: one driver session per test run, one fresh keyspace per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ops.bootstrap.cassandra import drop_keyspace, migrate
from ops.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Session


@pytest.fixture(scope="session")
def cassandra_session(settings: Settings) -> Iterator[Session]:
    """A session on the running node; fails (not skips) when none answers."""
    from cassandra.cluster import NoHostAvailable

    from ops.cql import open_cluster

    cluster = open_cluster(settings)
    try:
        session = cluster.connect()
    except NoHostAvailable as exc:
        cluster.shutdown()
        reason = str(exc)
    else:
        yield session
        cluster.shutdown()
        return
    # Outside the except block, so the report is the hint and not a chained traceback.
    pytest.fail(
        f"Cassandra does not answer on {settings.cassandra.host}:{settings.cassandra.port}: "
        f"run `intellidox up cassandra` ({reason})",
        pytrace=False,
    )


@pytest.fixture
def cassandra_keyspace(cassandra_session: Session, run_id: str) -> Iterator[str]:
    """A freshly migrated keyspace named after the test's run id, dropped afterwards."""
    migrate(cassandra_session, run_id)
    yield run_id
    drop_keyspace(cassandra_session, run_id)
