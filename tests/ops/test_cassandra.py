"""Cassandra against the running node: the verdicts table and the migration bookkeeping."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from ops.bootstrap.cassandra import applied_versions, drop_keyspace, load_migrations, migrate

if TYPE_CHECKING:
    from cassandra.cluster import Session

pytestmark = pytest.mark.integration


def _ms(moment: datetime) -> datetime:
    # Cassandra timestamps keep milliseconds and come back naive (UTC).
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=None)


def test_verdict_round_trip(cassandra_session: Session, cassandra_keyspace: str) -> None:
    doc_id, reused_from = uuid.uuid4(), uuid.uuid4()
    start = datetime.now(UTC)
    end = start + timedelta(seconds=2)
    cassandra_session.execute(
        f"INSERT INTO {cassandra_keyspace}.verdicts (doc_id, scanner, scanner_name, vendor, "
        "scan_result, verdict, engine_version, signatures_version, start_at, end_at, "
        "reused_from, tenant, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s)",
        (
            doc_id,
            "clamav",
            "ClamAV",
            "Cisco Talos",
            "Eicar-Signature FOUND",
            "malicious",
            "1.4.3",
            "27500",
            start,
            end,
            reused_from,
            "dev",
            end,
        ),
    )
    row = cassandra_session.execute(
        f"SELECT * FROM {cassandra_keyspace}.verdicts WHERE doc_id = %s", (doc_id,)
    ).one()
    assert row is not None
    assert (row.scanner, row.verdict, row.scan_result) == (
        "clamav",
        "malicious",
        "Eicar-Signature FOUND",
    )
    assert (row.start_at, row.end_at) == (_ms(start), _ms(end))
    assert row.reused_from == reused_from
    assert (row.engine_version, row.signatures_version, row.tenant) == ("1.4.3", "27500", "dev")


def test_migrate_twice_is_idempotent(cassandra_session: Session, run_id: str) -> None:
    every = [m.version for m in load_migrations()]
    try:
        assert migrate(cassandra_session, run_id) == every
        assert migrate(cassandra_session, run_id) == []
        assert applied_versions(cassandra_session, run_id) == set(every)
    finally:
        drop_keyspace(cassandra_session, run_id)


def test_the_node_acknowledges_a_write_only_once_its_commit_log_is_on_disk(
    cassandra_session: Session,
) -> None:
    # "periodic" (Cassandra's default) acknowledges first and syncs every 10 s: a killed node
    # lost writes it had acknowledged, verdicts among them (docs/RELIABILITY.md).  "group"
    # held every write for its 15 ms window.
    row = cassandra_session.execute(
        "SELECT value FROM system_views.settings WHERE name = 'commitlog_sync'"
    ).one()
    assert row is not None and row.value == "batch"


def test_the_driver_sends_each_request_at_once(cassandra_session: Session) -> None:
    # With Nagle's algorithm a request of more than one segment (a batch of verdicts) waited
    # for the node's delayed ACK: ~45 ms a batch write instead of ~3.
    connections = [pool._connection for pool in cassandra_session._pools.values()]
    assert connections
    for connection in connections:
        assert connection._socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
