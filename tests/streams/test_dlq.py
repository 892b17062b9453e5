"""Dead-lettering in the worker, in-process with a fake Faust app: outages are waited out,
other failures get a few tries, and what gives up goes to ``<topic>.dlq`` untouched, with the
one header format (schemas/dead_letters.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.dead_letters import DeadLetter
from schemas.documents import DocsStatus
from schemas.events import encode_event
from streams import dlq

STATUS = {
    "doc_id": "d1",
    "tenant": "t",
    "status": "done",
    "reason": None,
    "expected": 2,
    "at": datetime(2026, 12, 4, tzinfo=UTC),
}


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


@dataclass
class Event:
    message: Message

    @property
    def value(self) -> bytes:
        return self.message.value


@dataclass
class FakeApp:
    """Records what the worker sends to a topic."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def topic(self, name: str, **_: Any) -> Any:
        app = self

        class Topic:
            async def send(self, **kwargs: Any) -> None:
                app.sent.append((name, kwargs))

        return Topic()


class Handler:
    """Fails with ``errors`` one per call, then handles."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.seen = list(errors), 0

    async def __call__(self, record: DocsStatus) -> None:
        self.seen += 1
        assert record.doc_id == "d1"
        if self.errors:
            raise self.errors.pop(0)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return slept


def event(value: bytes | None = None) -> Event:
    value = encode_event("docs_status", STATUS) if value is None else value
    return Event(Message("docs.status", 2, 41, b"d1", value))


async def test_an_outage_is_retried_until_it_passes_and_nothing_is_dead_lettered(
    no_sleep: list[float],
) -> None:
    app, handler = FakeApp(), Handler(*[ConnectionError("store restarting")] * 12)
    await dlq.handle_or_dead_letter(app, event(), DocsStatus, handler, stage="tracker")
    assert handler.seen == 13 and app.sent == []
    assert len(no_sleep) == 12 and max(no_sleep) <= dlq.OUTAGE.cap_s


async def test_a_failing_handler_gets_its_tries_then_the_event_goes_to_the_dlq_untouched() -> None:
    app, handler = FakeApp(), Handler(*[ValueError("bad field")] * 5)
    sent = event()
    await dlq.handle_or_dead_letter(app, sent, DocsStatus, handler, stage="tracker")
    assert handler.seen == dlq.HANDLER.attempts
    [(topic, kwargs)] = app.sent
    assert topic == "docs.status.dlq"
    assert (kwargs["key"], kwargs["value"]) == (b"d1", sent.message.value)
    letter = DeadLetter.from_headers(kwargs["headers"].items())
    assert (letter.error, letter.stage) == ("ValueError: bad field", "tracker")
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "docs.status",
        2,
        41,
    )
    assert "ValueError: bad field" in letter.trace


async def test_an_event_that_does_not_decode_is_dead_lettered_at_once() -> None:
    app, handler = FakeApp(), Handler()
    await dlq.handle_or_dead_letter(
        app, event(b"\x00garbage"), DocsStatus, handler, stage="extraction"
    )
    assert handler.seen == 0 and [topic for topic, _ in app.sent] == ["docs.status.dlq"]
