"""The worker's Faust app: flow control that keeps what was fetched while flow was on."""

from __future__ import annotations

import asyncio

from mode.utils.queues import FlowControlQueue

from streams.app import SteadyFlowControl


async def test_resuming_flow_that_was_on_keeps_the_queues() -> None:
    flow = SteadyFlowControl()
    queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    flow.resume()  # on at start (Faust: to read the changelogs)
    await queue.put("fetched after the seek")
    flow.resume()  # again, once the stream partitions are sought (Faust cleared them here)
    assert queue.qsize() == 1 and flow.is_active()


async def test_resuming_after_a_suspension_clears_the_queues() -> None:
    flow = SteadyFlowControl()
    queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    flow.resume()
    await queue.put("of a partition taken away")
    flow.suspend()  # a rebalance: what is queued may belong to another worker now
    flow.resume()
    assert queue.qsize() == 0
    await asyncio.wait_for(queue.put("new"), 1)
    assert queue.qsize() == 1
