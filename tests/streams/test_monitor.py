"""The worker's pipeline probe: which groups it watches, and the stuck-document look."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from ops.settings import Settings
from schemas.records import ScannerHeartbeat
from streams import monitor


def beat(deadline_s: float, seconds_ago: float, now: datetime) -> ScannerHeartbeat:
    at = now - timedelta(seconds=seconds_ago)
    return ScannerHeartbeat("s", "Vendor", "os", "h", "h/1", "1.4.6", "27000", deadline_s, None, at)


def test_the_worker_watches_its_own_group_and_every_scanner_group() -> None:
    groups = monitor.consumer_groups(Settings(topic_prefix="p."), ["clamav", "yara"])
    assert groups["p.intellidox-worker"] == [
        "p.docs.requested",
        "p.docs.confirmed",
        "p.docs.metadata",
        "p.docs.status",
        "p.scan.requests",
        "p.scan.verdicts",
        "p.docs.reextract",
    ]
    assert groups["p.clamav"] == groups["p.yara"] == ["p.scan.requests"]
    assert monitor.dead_letter_topics(Settings(topic_prefix="p."))[0] == "p.docs.requested.dlq"


def test_a_document_may_take_the_longest_deadline_plus_detection_and_margin() -> None:
    now = datetime.now(UTC)
    settings = Settings(scan_deadline_s=60, scanner_alive_s=30)
    scanners = {"fast": beat(5, 1, now), "slow": beat(120, 1, now)}
    assert monitor.allowed_s(settings, scanners) == 120 + 30 + monitor.OVERDUE_MARGIN_S
    assert monitor.allowed_s(settings, {}) == 60 + 30 + monitor.OVERDUE_MARGIN_S


def test_heartbeat_age_and_engine_versions_per_scanner() -> None:
    now = datetime.now(UTC)
    families = list(monitor.scanner_families({"clamav": beat(60, 42, now)}, now.timestamp()))
    ages = {s.labels["scanner"]: s.value for s in families[0].samples}
    assert ages == {"clamav": pytest.approx(42, abs=0.01)}
    (info,) = families[1].samples
    assert info.name == "intellidox_scanner_engine_info" and info.value == 1
    assert info.labels == {
        "scanner": "clamav",
        "vendor": "Vendor",
        "engine_version": "1.4.6",
        "signatures_version": "27000",
    }


@pytest.fixture
async def pool(pg_conninfo: str, pg_schema: tuple[Any, str]) -> AsyncIterator[AsyncConnectionPool]:
    _, schema = pg_schema
    dsn = f"{pg_conninfo} options='-c search_path={schema}'"
    async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as opened:
        yield opened


def _document(conn: psycopg.Connection[Any], status: str, minutes_ago: float) -> None:
    conn.execute(
        "INSERT INTO documents (id, tenant, file_name, file_size, process_status, updated_at)"
        " VALUES (%s, 't', 'f', 1, %s, now() - make_interval(mins => %s))",
        (uuid.uuid4(), status, minutes_ago),
    )


@pytest.mark.integration
async def test_in_progress_documents_past_the_allowance_are_overdue(
    pg_schema: tuple[psycopg.Connection[Any], str], pool: AsyncConnectionPool
) -> None:
    conn, _ = pg_schema
    for status, minutes_ago in (("in_progress", 1), ("in_progress", 10), ("in_progress", 30)):
        _document(conn, status, minutes_ago)
    _document(conn, "done", 60)  # finished long ago: not in progress
    _document(conn, "uploaded", 60)
    found = await monitor.in_progress(pool, allowed=5 * 60)
    assert (found.count, found.overdue) == (3, 2)
    assert found.oldest_age_s == pytest.approx(30 * 60, abs=5)
    assert found.allowed_s == 300
    conn.execute("UPDATE documents SET process_status = 'done'")
    assert await monitor.in_progress(pool, allowed=300) == monitor.InProgress(0, 0, 0.0, 300)


@pytest.mark.integration
def test_the_look_uses_the_partial_index_not_a_scan_of_every_document(
    pg_schema: tuple[psycopg.Connection[Any], str],
) -> None:
    conn, _ = pg_schema
    conn.execute("SET enable_seqscan = off")  # the table is tiny here: ask whether it could
    plan = " ".join(
        row[0]
        for row in conn.execute(
            "EXPLAIN SELECT count(*) FROM documents WHERE process_status = 'in_progress'"
        ).fetchall()
    )
    assert "Seq Scan" not in plan and "Index Only Scan" in plan, plan
    conn.execute("RESET enable_seqscan")
