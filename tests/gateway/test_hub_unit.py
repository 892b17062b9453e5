"""The hub's inbox, without Kafka."""

import asyncio
import contextlib
import tracemalloc
from datetime import UTC, datetime

from aiokafka import ConsumerRecord, TopicPartition

from gateway.hub import HEARTBEAT_SLICES, Hub, Inbox, heartbeats, publish_fetch
from gateway.sse import Fact
from schemas.documents import DocsStatus

DOC = "01a22200-0000-7000-8000-0000000000d1"


async def test_an_inbox_hands_facts_over_in_order_and_wakes_its_reader() -> None:
    inbox = Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    facts = [Fact("status", i, {"status": "uploaded"}) for i in range(3)]
    for fact in facts:
        inbox.put_nowait(fact)
    assert [await reader, await inbox.get(), await inbox.get()] == facts


async def test_a_read_cancelled_while_waiting_loses_nothing() -> None:
    inbox = Inbox()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.01):
            await inbox.get()
    fact = Fact("meta", 7, {})
    inbox.put_nowait(fact)
    assert await asyncio.wait_for(inbox.get(), 1) is fact


def test_an_inbox_is_a_fraction_of_an_asyncio_queue() -> None:
    # Every open event stream holds one: 10,000 idle streams must not cost 30 MB for these.
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        inboxes = [Inbox() for _ in range(1000)]
        per_inbox = (tracemalloc.get_traced_memory()[0] - before) / len(inboxes)
    finally:
        tracemalloc.stop()
    assert per_inbox < 300


async def test_a_nudge_wakes_an_idle_reader_with_nothing_and_a_waiting_fact_comes_first() -> None:
    inbox = Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.nudge()
    assert await asyncio.wait_for(reader, 1) is None  # time for a heartbeat
    fact = Fact("meta", 7, {})
    inbox.nudge()
    inbox.put_nowait(fact)
    assert await inbox.get() is fact  # a fact is as good as a heartbeat: the nudge is spent
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0.01)
    assert not reader.done()
    reader.cancel()


async def test_the_heartbeat_nudges_every_stream_once_a_period_a_slice_at_a_time() -> None:
    hub = Hub()
    inboxes = [hub.subscribe(f"doc-{i}") for i in range(2 * HEARTBEAT_SLICES)]
    readers = [asyncio.create_task(inbox.get()) for inbox in inboxes]
    beating = asyncio.create_task(heartbeats(hub, period_s=0.32))
    try:
        await asyncio.sleep(0.32 / 2 + 0.01)  # half a period: about half of them
        woken = sum(reader.done() for reader in readers)
        assert 0 < woken < len(readers)
        await asyncio.wait_for(asyncio.gather(*readers), 1)  # within the period: all of them
        assert all(reader.result() is None for reader in readers)
    finally:
        beating.cancel()
        for reader in readers:
            reader.cancel()


def test_an_unsubscribed_inbox_hears_nothing_more_and_the_document_is_forgotten() -> None:
    hub = Hub()
    first, middle, last = hub.subscribe("d"), hub.subscribe("d"), hub.subscribe("d")
    hub.unsubscribe("d", middle)
    hub.publish("d", Fact("meta", 1, {}))
    assert first.take() is not None and last.take() is not None and middle.take() is None
    for inbox in (last, middle, first, first):  # the head, one already gone, the last, twice
        hub.unsubscribe("d", inbox)
    hub.publish("d", Fact("meta", 2, {}))
    assert all(inbox.take() is None for inbox in (first, middle, last))
    assert "d" not in hub._subscribers


def _status_message(offset: int, doc_id: str, status: str) -> ConsumerRecord[bytes, bytes]:
    value = DocsStatus(doc_id, "t", status, None, None, datetime.now(UTC)).encode()
    return ConsumerRecord(
        "docs.status", 0, offset, 0, 0, None, value, None, len(value), len(value), ()
    )


def test_a_fetch_is_published_in_order_and_the_position_moves_past_it() -> None:
    hub, errors = Hub(), []
    inbox = hub.subscribe(DOC)
    status = TopicPartition("docs.status", 0)
    fetched = {
        status: [_status_message(7, DOC, "uploaded"), _status_message(8, DOC, "scanning")],
        TopicPartition("docs.status", 1): [],
    }
    publish_fetch(hub, {"docs.status": "status"}, fetched, lambda: errors.append(1))
    facts = [inbox.take(), inbox.take(), inbox.take()]
    assert [(f.offset, f.data["status"]) for f in facts if f] == [(7, "uploaded"), (8, "scanning")]
    assert facts[2] is None and not errors
    assert hub.positions == {status: 9}  # a reconnect resumes after the last event taken


def test_a_poison_event_is_counted_and_passed_over() -> None:
    hub, errors = Hub(), []
    inbox = hub.subscribe(DOC)
    poison = _status_message(3, DOC, "uploaded")
    poison.value = b"\x00junk"
    status = TopicPartition("docs.status", 0)
    fetched = {status: [poison, _status_message(4, DOC, "done")]}
    publish_fetch(hub, {"docs.status": "status"}, fetched, lambda: errors.append(1))
    fact = inbox.take()
    assert fact is not None and fact.offset == 4 and inbox.take() is None
    assert errors == [1] and hub.positions == {status: 5}
