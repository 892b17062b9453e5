"""Storage-event latency: the PUT of an upload → ``status: uploaded`` on its SSE stream, with
no confirm (the filer's event, the storage-events listener, the outbox relay, Kafka, the hub).

Run with the services up (``make run`` or ``intellidox up``):

    .venv/bin/python -m ops.bench.storage_events [--docs 50] [--concurrency 1]

It starts its own stack (worker, one instant scanner, gateway, storage-events listener) on
fresh topics and buckets, opens each document's event stream before the upload, and times
from the start of the PUT (and from its response) to the ``uploaded`` status event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp

from ops.bench.common import machine, new_stack, summary

SCANNERS = ["sim:simulated?latency_ms=0"]


async def one_upload(session: aiohttp.ClientSession, base: str, key: str) -> tuple[float, float]:
    """(PUT start → uploaded, PUT response → uploaded) in ms."""
    data = f"storage event {uuid.uuid4()}".encode()
    body = {"file_name": "event.txt", "file_size": len(data)}
    headers = {"Authorization": f"Bearer {key}"}
    async with session.post(f"{base}/docs/request-upload", json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        ticket: dict[str, Any] = json.loads(await resp.text())
    subscribed = asyncio.Event()
    watcher = asyncio.create_task(_uploaded_at(session, ticket["urls"]["events"], subscribed))
    await asyncio.wait_for(subscribed.wait(), 30)  # the snapshot came: the stream is live
    upload = ticket["upload"]
    started = time.perf_counter()
    async with session.put(upload["url"], data=data, headers=upload["headers"]) as resp:
        assert resp.status == 200, await resp.text()
    answered = time.perf_counter()
    seen = await asyncio.wait_for(watcher, 30)
    return (seen - started) * 1000, (seen - answered) * 1000


async def _uploaded_at(
    session: aiohttp.ClientSession, url: str, subscribed: asyncio.Event
) -> float:
    async with session.get(url) as resp:
        event = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "status":
                status = json.loads(line[6:])["status"]
                if status == "requested":
                    subscribed.set()
                elif status == "uploaded":
                    return time.perf_counter()
    raise RuntimeError("stream ended before 'uploaded'")


async def run(docs: int, concurrency: int) -> None:
    stack = new_stack(SCANNERS)
    try:
        print(f"machine: {machine()}; stack on {stack.settings.topic_prefix}")
        key, base = stack.settings.dev_api_key, stack.url
        gate = asyncio.Semaphore(concurrency)
        timeout = aiohttp.ClientTimeout(total=120)
        connector = aiohttp.TCPConnector(limit=0)  # open streams must not starve the PUTs
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            for _ in range(3):  # warm-up: connections, prepared statements, the hub
                await one_upload(session, base, key)

            async def measured() -> tuple[float, float]:
                async with gate:
                    return await one_upload(session, base, key)

            results = await asyncio.gather(*(measured() for _ in range(docs)))
        print(f"{docs} uploads, {concurrency} at a time, no confirm")
        print(summary("PUT start -> SSE uploaded", [r[0] for r in results]))
        print(summary("PUT answered -> SSE uploaded", [r[1] for r in results]))
    finally:
        stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.docs, args.concurrency))


if __name__ == "__main__":
    main()
