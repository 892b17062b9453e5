"""Confirm → first SSE status event, and confirm → done with 10 instant simulated scanners.

Run with the services up (``make run`` or ``intellidox up``):

    .venv/bin/python -m ops.bench.pipeline_latency [--docs 200]

It starts its own worker, scanners and gateway on fresh topics, subscribes to each document's
event stream, confirms, and times the first status change and the final ``done``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp

from ops.bench.common import machine, new_stack, request_and_put, summary

SCANNERS = [f"sim{i:02d}:simulated?latency_ms=0" for i in range(10)]


async def one_document(session: aiohttp.ClientSession, base: str, key: str) -> tuple[float, float]:
    ticket = await request_and_put(session, base, key)
    confirmed_at: list[float] = []
    first_status: list[float] = []

    async def watch() -> float:
        async with session.get(ticket["urls"]["events"]) as resp:
            event = ""
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and confirmed_at:
                    data: dict[str, Any] = json.loads(line[6:])
                    if event == "status" and not first_status and data["status"] != "requested":
                        first_status.append(time.perf_counter())
                    if event == "done":
                        return time.perf_counter()
        raise RuntimeError("stream ended without done")

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.05)  # subscribed before the confirm, as a browser would be
    headers = {"Authorization": f"Bearer {key}"}
    confirmed_at.append(time.perf_counter())
    async with session.post(f"{base}/docs/{ticket['id']}/confirm-upload", headers=headers) as resp:
        assert resp.status == 202, await resp.text()
    done_at = await asyncio.wait_for(watcher, 60)
    return (first_status[0] - confirmed_at[0]) * 1000, (done_at - confirmed_at[0]) * 1000


async def run(docs: int) -> None:
    stack = new_stack(SCANNERS)
    try:
        print(f"machine: {machine()}; stack on {stack.settings.topic_prefix}; 10 instant scanners")
        await asyncio.sleep(3)  # let the worker see every scanner's heartbeat
        firsts, dones = [], []
        async with aiohttp.ClientSession() as session:
            for _ in range(5):  # warm-up: connections, prepared statements, JIT of the JVMs
                await one_document(session, stack.url, stack.settings.dev_api_key)
            for _ in range(docs):
                first, done = await one_document(session, stack.url, stack.settings.dev_api_key)
                firsts.append(first)
                dones.append(done)
        print(summary("confirm → first SSE status event", firsts))
        print(summary("confirm → done (10 instant scanners)", dones))
    finally:
        stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    asyncio.run(run(parser.parse_args().docs))


if __name__ == "__main__":
    main()
