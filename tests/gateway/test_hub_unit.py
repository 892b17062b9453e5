"""The hub's inbox, without Kafka."""

import asyncio
import contextlib
import tracemalloc

from gateway.hub import Inbox
from gateway.sse import Fact


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
