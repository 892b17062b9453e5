"""The Cassandra sink on a real node: one row per (document, scanner), replay-safe."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cassandra.cluster import Session

from gateway.verdicts import verdict_view
from ops.cql import CassandraClient
from ops.ids import uuid7
from schemas.records import RescanOf, ScanVerdict
from streams.sinks.cassandra import write

pytestmark = pytest.mark.integration


def _verdict(doc_id: str, verdict: str, end_at: datetime) -> ScanVerdict:
    return ScanVerdict.from_record(
        {
            "doc_id": doc_id,
            "tenant": "t",
            "scanner": "clamav",
            "vendor": "Talos",
            "verdict": verdict,
            "result": verdict,
            "engine_version": "1",
            "signatures_version": "2",
            "start_at": end_at - timedelta(seconds=1),
            "end_at": end_at,
            "reused_from": None,
        }
    )


def test_one_row_per_scanner_and_a_late_real_verdict_beats_its_timeout(
    cassandra_session: Session, cassandra_keyspace: str
) -> None:
    client = CassandraClient(cassandra_session.cluster, cassandra_session)
    doc_id = str(uuid7())
    now = datetime.now(UTC).replace(microsecond=0)
    timeout = _verdict(doc_id, "timeout", now)
    late_clean = _verdict(doc_id, "clean", now - timedelta(seconds=2))  # finished just before
    write(client, cassandra_keyspace, [(late_clean, 5), (timeout, 4)])
    write(client, cassandra_keyspace, [(timeout, 4)])  # replay of the timeout alone
    rows = list(
        cassandra_session.execute(
            f"SELECT scanner, verdict, kafka_offset FROM {cassandra_keyspace}.verdicts"
            " WHERE doc_id = %s",
            (uuid.UUID(doc_id),),
        )
    )
    assert [(r.scanner, r.verdict, r.kafka_offset) for r in rows] == [("clamav", "clean", 5)]


def _rows(session: Session, keyspace: str, doc_id: str) -> list[Any]:
    return list(
        session.execute(
            f"SELECT scanner, verdict, kafka_offset, timeout_offset FROM {keyspace}.verdicts"
            " WHERE doc_id = %s",
            (uuid.UUID(doc_id),),
        )
    )


def test_a_verdict_after_a_timeout_keeps_the_timeouts_offset_and_reads_as_late(
    cassandra_session: Session, cassandra_keyspace: str
) -> None:
    client = CassandraClient(cassandra_session.cluster, cassandra_session)
    now = datetime.now(UTC).replace(microsecond=0)
    late_doc, racing_doc = str(uuid7()), str(uuid7())
    # The engine answered after the tracker gave up: timeout at offset 7, verdict at 9.
    write(client, cassandra_keyspace, [(_verdict(late_doc, "timeout", now), 7)])
    write(client, cassandra_keyspace, [(_verdict(late_doc, "malicious", now), 9)])
    # The verdict was on the topic before the tracker's timeout (a race): 3, then 4.
    write(
        client,
        cassandra_keyspace,
        [(_verdict(racing_doc, "clean", now), 3), (_verdict(racing_doc, "timeout", now), 4)],
    )
    late = _rows(cassandra_session, cassandra_keyspace, late_doc)
    racing = _rows(cassandra_session, cassandra_keyspace, racing_doc)
    assert [(r.verdict, r.kafka_offset, r.timeout_offset) for r in late] == [("malicious", 9, 7)]
    assert [(r.verdict, r.kafka_offset, r.timeout_offset) for r in racing] == [("clean", 3, 4)]
    assert verdict_view(late[0]._asdict())["late"] is True
    assert verdict_view(racing[0]._asdict())["late"] is False


def test_a_rescan_replaces_the_verdict_and_every_verdict_stays_in_the_history(
    cassandra_session: Session, cassandra_keyspace: str
) -> None:
    client = CassandraClient(cassandra_session.cluster, cassandra_session)
    ks, doc_id = cassandra_keyspace, str(uuid7())
    now = datetime.now(UTC).replace(microsecond=0)
    first = _verdict(doc_id, "clean", now - timedelta(minutes=5))
    rescan = replace(
        _verdict(doc_id, "malicious", now),
        signatures_version="3",
        rescan=RescanOf("clean", "2", "signatures", str(uuid.uuid4())),
    )
    timeout = replace(_verdict(doc_id, "timeout", now), scanner="yara")
    write(client, ks, [(first, 1), (timeout, 2)], scope="s1.")
    write(client, ks, [(rescan, 9)], scope="s1.")
    write(client, ks, [(rescan, 9)], scope="s1.")  # redelivered: nothing new
    row = cassandra_session.execute(
        f"SELECT * FROM {ks}.verdicts WHERE doc_id = %s AND scanner = 'clamav'",
        (uuid.UUID(doc_id),),
    ).one()
    view = verdict_view(row._asdict())
    assert (view["verdict"], view["rescan"], view["previous_verdict"]) == (
        "malicious",
        True,
        "clean",
    )
    history = list(
        cassandra_session.execute(
            f"SELECT scanner, verdict, rescan_previous FROM {ks}.verdict_history WHERE doc_id = %s",
            (uuid.UUID(doc_id),),
        )
    )
    assert [(h.scanner, h.verdict, h.rescan_previous) for h in history] == [
        ("clamav", "malicious", "clean"),
        ("clamav", "clean", None),
        ("yara", "timeout", None),
    ]
    hours = {first.end_at.replace(minute=0, second=0), now.replace(minute=0, second=0)}
    listed = [
        r
        for hour in hours
        for r in cassandra_session.execute(
            f"SELECT scanner, hour, verdict, signatures_version FROM {ks}.verdicts_by_scanner"
            " WHERE scope = 's1.' AND scanner = 'clamav' AND hour = %s",
            (hour,),
        )
    ]
    assert sorted((r.verdict, r.signatures_version) for r in listed) == [
        ("clean", "2"),
        ("malicious", "3"),
    ]
    nothing = cassandra_session.execute(
        f"SELECT * FROM {ks}.verdicts_by_scanner WHERE scope = 's1.' AND scanner = 'yara'"
        " AND hour = %s",
        (now.replace(minute=0, second=0),),
    ).all()
    assert nothing == []  # a timeout judged nothing
