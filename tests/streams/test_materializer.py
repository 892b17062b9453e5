"""The materializer's batch logic, in-process with fakes (no Kafka, no stores): an outage is
retried until it passes, a record no sink can write is isolated and dead-lettered with its
reason, and the rest of its batch is written."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams import materializer
from streams.dlq import STORE_OUTAGES
from streams.sinks.postgres import UnknownSchema, statement

Item = tuple[str, dict[str, Any], int]


class FakeStore:
    """Writes whole batches; fails a batch holding an unknown schema; can be away N times."""

    def __init__(self, away: int = 0) -> None:
        self.away = away
        self.rows: list[Item] = []

    async def write(self, items: list[Item]) -> None:
        if self.away:
            self.away -= 1
            raise STORE_OUTAGES[0]("store restarting")
        for schema, _, _ in items:
            if schema not in ("docs_requested", "docs_status"):
                raise UnknownSchema(f"no rule for schema {schema!r}")
        self.rows.extend(items)


@pytest.fixture
def dead_letters(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, str]]:
    letters: list[tuple[Any, str]] = []

    async def to_dlq(_app: Any, event: Any, exc: BaseException) -> None:
        letters.append((event, str(exc)))

    async def no_sleep(_seconds: float) -> None:
        return None

    monkeypatch.setattr(materializer, "send_to_dlq", to_dlq)
    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    return letters


def _batch(*schemas: str) -> list[tuple[Item, Any]]:
    return [((s, {"doc_id": str(i)}, i), f"event-{i}") for i, s in enumerate(schemas)]


async def test_an_unknown_schema_is_dead_lettered_and_the_rest_written(
    dead_letters: list[tuple[Any, str]],
) -> None:
    store = FakeStore()
    written = await materializer.persist(
        _batch("docs_requested", "docs_from_the_future", "docs_status"), store.write
    )
    assert [schema for schema, _, _ in store.rows] == ["docs_requested", "docs_status"]
    assert [event for _, event in written] == ["event-0", "event-2"]
    assert dead_letters == [("event-1", "no rule for schema 'docs_from_the_future'")]


async def test_an_outage_is_retried_until_the_whole_batch_passes(
    dead_letters: list[tuple[Any, str]],
) -> None:
    store = FakeStore(away=3)
    written = await materializer.persist(_batch("docs_requested", "docs_status"), store.write)
    assert len(written) == 2 and len(store.rows) == 2 and not dead_letters


def test_the_postgres_sink_refuses_a_schema_it_has_no_rule_for() -> None:
    record = {"doc_id": "01a22200-91e4-71d5-b9b0-38053be307f3"}
    with pytest.raises(UnknownSchema, match="docs_archived"):
        statement("docs_archived", record, 0)
