"""The completion tracker's glue, in-process with fakes (a dict for the Faust table, a fake
status topic): statuses go out as a document advances, and the state is saved only after its
status events are sent, so a failed send is emitted again on redelivery."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from schemas.documents import DocsConfirmed, DocsStatus
from schemas.record import at_ms
from schemas.records import ScanVerdict
from schemas.scans import ExpectedScanner, ScanRequest
from streams import dlq, progress, registry, tracker

DOC = "01a21e2b-1134-7384-8db8-e24c5ec7fb12"
T0 = at_ms(0)


class StatusTopic:
    def __init__(self) -> None:
        self.sent: list[DocsStatus] = []
        self.refuse = 0  # sends to fail (Kafka away)

    async def send(self, key: bytes, value: bytes) -> None:
        if self.refuse:
            self.refuse -= 1
            raise ConnectionError("kafka away")
        status = DocsStatus.decode(value)
        assert key == status.doc_id.encode()
        self.sent.append(status)


@pytest.fixture
def statuses(monkeypatch: pytest.MonkeyPatch) -> StatusTopic:
    topic = StatusTopic()
    monkeypatch.setattr(tracker, "table", {})
    monkeypatch.setattr(tracker, "status_topic", topic)
    return topic


def request(*scanners: str, doc: str = DOC) -> ScanRequest:
    expected = tuple(ExpectedScanner(name, at_ms(30_000)) for name in scanners)
    return ScanRequest(doc, "t", "f", 1, None, None, "a" * 64, "http://s3/x", T0, expected, T0)


def verdict(scanner: str, doc: str = DOC) -> ScanVerdict:
    return ScanVerdict(doc, "t", scanner, "", "clean", "", "", "", T0, T0)


async def test_a_document_goes_in_progress_then_done_once_every_scanner_answered(
    statuses: StatusTopic,
) -> None:
    confirmed = DocsConfirmed(DOC, "t", "f", 1, None, "b", DOC, T0, T0)
    await tracker.apply(progress.on_confirmed, confirmed)
    await tracker.apply(progress.on_scan_request, request("a", "b"))
    await tracker.apply(progress.on_verdict, verdict("a"))
    assert [(s.status, s.expected) for s in statuses.sent] == [("in_progress", 2)]
    await tracker.apply(progress.on_verdict, verdict("b"))
    await tracker.apply(progress.on_verdict, verdict("b"))  # redelivered: nothing new
    assert [(s.status, s.expected) for s in statuses.sent] == [("in_progress", 2), ("done", 2)]
    saved = tracker.load(DOC)
    assert saved is not None and saved.status == "done" and saved.got == ["a", "b"]


async def test_a_status_that_could_not_be_sent_is_sent_again_on_redelivery(
    statuses: StatusTopic,
) -> None:
    await tracker.apply(progress.on_scan_request, request("a"))
    statuses.refuse = 1
    with pytest.raises(ConnectionError):
        await tracker.apply(progress.on_verdict, verdict("a"))
    state: Any = tracker.load(DOC)
    assert state.status == "in_progress"  # not saved as done: the event was not out
    await tracker.apply(progress.on_verdict, verdict("a"))  # the redelivered verdict
    assert [s.status for s in statuses.sent] == ["in_progress", "done"]


async def test_a_verdict_tracked_while_the_request_sends_its_status_is_kept(
    statuses: StatusTopic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agents of one document run side by side: the request's status send may yield
    to the verdict's agent, and the request's save must not write over what it saved."""
    send = statuses.send

    async def yielding_send(key: bytes, value: bytes) -> None:
        await asyncio.sleep(0)  # Kafka's buffer full: the send waits, other agents run
        await send(key, value)

    monkeypatch.setattr(statuses, "send", yielding_send)
    await asyncio.gather(
        tracker.apply(progress.on_scan_request, request("a", "b")),
        tracker.apply(progress.on_verdict, verdict("a")),
    )
    await tracker.apply(progress.on_verdict, verdict("b"))
    saved = tracker.load(DOC)
    assert saved is not None and sorted(saved.got) == ["a", "b"] and saved.status == "done"


async def test_a_document_lock_is_forgotten_once_nobody_holds_or_waits_for_it() -> None:
    locks, order = tracker.DocumentLocks(), []

    async def change(name: str) -> None:
        async with locks.hold(DOC):
            order.append(f"{name} in")
            await asyncio.sleep(0)
            order.append(f"{name} out")

    await asyncio.gather(change("first"), change("second"))
    assert order == ["first in", "first out", "second in", "second out"]
    assert not locks.busy(DOC)


async def test_the_deadline_timer_leaves_a_document_an_agent_is_changing(
    statuses: StatusTopic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its scanner is gone past the deadline, but an agent holds the document: the timer
    waits for the next tick instead of saving over what the agent is about to save."""
    timeouts: list[ScanVerdict] = []

    class Verdicts:
        async def send(self, key: bytes, value: bytes) -> None:
            timeouts.append(ScanVerdict.decode(value))

    async def nobody_alive(_now_ms: int) -> progress.Liveness:
        return progress.Liveness(True, frozenset())

    monkeypatch.setattr(tracker, "verdicts_topic", Verdicts())
    monkeypatch.setattr(registry, "liveness", nobody_alive)
    await tracker.apply(progress.on_scan_request, request("a"))
    state: Any = tracker.load(DOC)
    state.down_ms = {"a": 60_000}  # gone for longer than its 30 s deadline
    tracker.table[DOC] = state.to_json()

    release = asyncio.Event()

    async def agent() -> None:
        async with tracker.locks.hold(DOC):
            await release.wait()

    def a_second_ago() -> None:  # the tick before: this one charges a second
        clock = progress.DeadlineClock(2000, tracker._now_ms() - 1000)
        monkeypatch.setattr(tracker, "clock", clock)

    holder = asyncio.create_task(agent())
    await asyncio.sleep(0)
    a_second_ago()
    await tracker.check_deadlines()
    assert timeouts == []
    release.set()
    await holder
    a_second_ago()
    await tracker.check_deadlines()
    assert [(v.scanner, v.verdict) for v in timeouts] == [("a", "timeout")]


# -- verdicts in batches (the materializer's, once written) ----------------------------------
OTHER = "01a21e2b-1134-7384-8db8-e24c5ec7fb13"


class CountedTable(dict[str, Any]):
    """The Faust table's part the tracker uses; each save is a changelog message."""

    saves = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.saves += 1
        super().__setitem__(key, value)


def delivered(records: list[ScanVerdict]) -> list[tuple[ScanVerdict, Any]]:
    """Each verdict with the event it came in (offsets from 1)."""
    return [
        (record, SimpleNamespace(value=record.encode(), message=_message(offset)))
        for offset, record in enumerate(records, 1)
    ]


def _message(offset: int) -> Any:
    return SimpleNamespace(topic="scan.verdicts", partition=0, offset=offset, key=DOC.encode())


async def no_sleep(_seconds: float) -> None:
    return None


async def test_a_batch_of_verdicts_is_saved_once_per_document(
    statuses: StatusTopic, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = CountedTable()
    monkeypatch.setattr(tracker, "table", table)
    await tracker.apply(progress.on_scan_request, request("a", "b"))
    await tracker.apply(progress.on_scan_request, request("a", doc=OTHER))
    before = table.saves
    batch = [verdict("a"), verdict("a", doc=OTHER), verdict("b"), verdict("a")]
    await tracker.track_verdicts(delivered(batch))
    assert table.saves - before == 2  # one a document, not one a verdict
    done = [(s.doc_id, s.status) for s in statuses.sent if s.status == "done"]
    assert done == [(DOC, "done"), (OTHER, "done")]
    saved = tracker.load(DOC)
    assert saved is not None and saved.got == ["a", "b"]
    await tracker.track_verdicts(delivered([verdict("b")]))  # read again: changes nothing
    assert table.saves - before == 2


async def test_a_batch_waits_out_an_outage_and_sends_each_status_once(
    statuses: StatusTopic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    await tracker.apply(progress.on_scan_request, request("a"))
    statuses.refuse = 2  # Kafka away for the first two sends of "done"
    await tracker.track_verdicts(delivered([verdict("a")]))
    assert [s.status for s in statuses.sent] == ["in_progress", "done"]


async def test_a_verdict_that_cannot_be_tracked_is_dead_lettered_alone(
    statuses: StatusTopic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The document's fold keeps failing: its verdicts are tracked one by one, the good
    one counts and only the bad one goes to the dead-letter topic."""
    letters: list[tuple[int, str]] = []

    async def to_dlq(_app: Any, event: Any, exc: BaseException) -> None:
        letters.append((event.message.offset, str(exc)))

    real = progress.on_verdict

    def refusing(p: Any, record: ScanVerdict, now_ms: int) -> Any:
        if record.scanner == "bad":
            raise ValueError("cannot track this one")
        return real(p, record, now_ms)

    monkeypatch.setattr(dlq, "send_to_dlq", to_dlq)
    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    monkeypatch.setattr(progress, "on_verdict", refusing)
    await tracker.apply(progress.on_scan_request, request("a", "bad"))
    await tracker.track_verdicts(delivered([verdict("a"), verdict("bad")]))
    assert letters == [(2, "cannot track this one")]
    saved = tracker.load(DOC)
    assert saved is not None and saved.got == ["a"] and saved.status == "in_progress"
