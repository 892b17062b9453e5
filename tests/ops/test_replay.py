"""Operators rebuild projections from the topics (dead letters: tests/ops/test_dlq.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from cassandra.cluster import Session

from ops.replay import replay
from tests.gateway.client import Api
from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration


async def test_replay_rebuilds_both_projections_from_the_topics(
    api: Api,
    pipeline: Pipeline,
    pg_schema: tuple[Any, str],
    cassandra_keyspace: str,
    cassandra_session: Session,
) -> None:
    ticket = await api.upload("replayed.txt", b"replay me " + uuid.uuid4().hex.encode())
    live = await api.wait_done(ticket["id"])
    meta = (await api.call("GET", f"/docs/{ticket['id']}/meta")).body
    _, schema = pg_schema
    counts = await asyncio.to_thread(replay, pipeline.settings, schema, cassandra_keyspace)
    assert counts["document_events"] > 0 and counts["verdict_events"] >= 3
    with psycopg.connect(
        pipeline.settings.postgres.dsn, options=f"-c search_path={schema}"
    ) as conn:
        row = conn.execute(
            "SELECT process_status, sha256, file_type, meta_data FROM documents WHERE id = %s",
            (ticket["id"],),
        ).fetchone()
    assert row is not None
    assert (row[0], row[1], row[2]) == ("done", meta["sha256"], meta["file_type"])
    assert row[3]["text_words"] == meta["meta"]["text_words"]
    verdicts = cassandra_session.execute(
        f"SELECT scanner, verdict FROM {cassandra_keyspace}.verdicts WHERE doc_id = %s",
        (uuid.UUID(ticket["id"]),),
    )
    rebuilt = sorted((r.scanner, r.verdict) for r in verdicts)
    assert rebuilt == sorted((r["scanner"], r["verdict"]) for r in live["scan_results"])
