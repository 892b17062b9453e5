"""The materializer's batch logic, in-process with fakes (no Kafka, no stores): an outage is
retried until it passes, a record no sink can write is isolated and dead-lettered with its
reason, and the rest of its batch is written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from schemas.documents import DocsRequested, DocsStatus
from schemas.record import Record, at_ms
from schemas.records import ScanVerdict
from streams import materializer
from streams.dlq import STORE_OUTAGES
from streams.sinks import UnknownSchema, cassandra
from streams.sinks.postgres import statement

Item = tuple[Record, int]
DOC = "01a22200-91e4-71d5-b9b0-38053be307f3"
T0 = at_ms(0)
RECORDS: dict[str, Record] = {
    "docs_requested": DocsRequested(DOC, "t", "f", 1, None, None, T0),
    "docs_status": DocsStatus(DOC, "t", "done", None, 1, T0),
    "scan_verdict": ScanVerdict(DOC, "t", "clamav", "", "clean", "", "", "", T0, T0),
}


class FakeStore:
    """Writes whole batches; fails a batch holding an unknown schema; can be away N times."""

    def __init__(self, away: int = 0) -> None:
        self.away = away
        self.rows: list[Item] = []

    async def write(self, items: list[Item]) -> None:
        if self.away:
            self.away -= 1
            raise STORE_OUTAGES[0]("store restarting")
        for record, _ in items:
            statement(record, 0)  # the Postgres sink's own rule (raises UnknownSchema)
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
    return [((RECORDS[s], i), f"event-{i}") for i, s in enumerate(schemas)]


async def test_an_unknown_schema_is_dead_lettered_and_the_rest_written(
    dead_letters: list[tuple[Any, str]],
) -> None:
    store = FakeStore()
    written = await materializer.persist(
        _batch("docs_requested", "scan_verdict", "docs_status"), store.write
    )
    assert [record.SCHEMA for record, _ in store.rows] == ["docs_requested", "docs_status"]
    assert [event for _, event in written] == ["event-0", "event-2"]
    assert dead_letters == [
        ("event-1", "the documents projection has no rule for schema 'scan_verdict'")
    ]


async def test_an_outage_is_retried_until_the_whole_batch_passes(
    dead_letters: list[tuple[Any, str]],
) -> None:
    store = FakeStore(away=3)
    written = await materializer.persist(_batch("docs_requested", "docs_status"), store.write)
    assert len(written) == 2 and len(store.rows) == 2 and not dead_letters


def test_the_postgres_sink_refuses_a_schema_it_has_no_rule_for() -> None:
    with pytest.raises(UnknownSchema, match="scan_verdict"):
        statement(RECORDS["scan_verdict"], 0)


def test_the_cassandra_sink_refuses_anything_but_a_verdict_before_writing() -> None:
    class NoClient:
        def prepared(self, query: str) -> None:
            raise AssertionError("nothing may be written")

    batch: list[Any] = [(RECORDS["scan_verdict"], 1), (RECORDS["docs_status"], 2)]
    with pytest.raises(UnknownSchema, match="docs_status"):
        cassandra.write(NoClient(), "ks", batch)  # type: ignore[arg-type]


class Stream:
    """What the agent reads of a Faust stream: its batches."""

    def __init__(self, *batches: list[Any]) -> None:
        self.batches = batches

    async def take_events(self, _most: int, within: float) -> AsyncIterator[list[Any]]:
        for batch in self.batches:
            yield batch


def _event(record: Record, offset: int) -> Any:
    message = SimpleNamespace(topic="scan.verdicts", partition=0, offset=offset, key=b"")
    return SimpleNamespace(value=record.encode(), message=message)


async def test_followers_get_each_batch_once_written_and_a_failing_one_stops_nothing(
    dead_letters: list[tuple[Any, str]],
) -> None:
    written: list[Item] = []
    seen: list[tuple[str, list[int], int]] = []

    async def write(items: list[Item]) -> None:
        written.extend(items)

    async def broken(batch: list[tuple[Record, Any]]) -> None:
        raise RuntimeError("a bug in a follower")

    async def follower(batch: list[tuple[Record, Any]]) -> None:
        offsets = [event.message.offset for _, event in batch]
        seen.append((batch[0][0].SCHEMA, offsets, len(written)))

    verdict = RECORDS["scan_verdict"]
    stream = Stream([_event(verdict, 1), _event(verdict, 2)], [_event(verdict, 3)])
    await materializer._materialize(stream, write, "verdicts", [broken, follower])
    # each batch after its write (the rows already there), the broken follower logged only
    assert seen == [("scan_verdict", [1, 2], 2), ("scan_verdict", [3], 3)]
