"""A steady stream of documents through the gateway, as browsers would send and watch them.

Each document: request-upload, PUT, open its event stream, confirm.  Clients behave like good
clients: a refused connection or a 503 is retried after ``Retry-After``; an event stream that
breaks is reopened with ``Last-Event-ID``.  Everything the gateway answered and every event a
stream delivered is recorded, so a run can be audited afterwards (see ``ops.bench.audit``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

RETRY_FOR_S = 300.0  # a client gives up on one call after this long


@dataclass
class Doc:
    """One document as its client saw it."""

    index: int
    doc_id: str = ""
    confirmed_at: float | None = None
    first_status_at: float | None = None  # the first status after 'requested'
    done_at: float | None = None
    verdict_events: list[dict[str, Any]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    reconnects: int = 0


@dataclass
class Load:
    """The client side of a run."""

    base: str
    key: str
    docs: list[Doc] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def server_errors(self) -> int:
        """5xx answers other than an honest 503 (which says 'retry shortly')."""
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)

    def unavailable(self) -> int:
        return self.statuses[503]


async def run_load(
    session: aiohttp.ClientSession, load: Load, count: int, rate: float
) -> list[asyncio.Task[None]]:
    """Start ``count`` documents at ``rate`` per second; returns their tasks."""
    tasks = []
    for index in range(count):
        doc = Doc(index)
        load.docs.append(doc)
        tasks.append(asyncio.create_task(one_document(session, load, doc)))
        await asyncio.sleep(1 / rate)
    return tasks


async def one_document(session: aiohttp.ClientSession, load: Load, doc: Doc, size: int = 0) -> None:
    data = f"doc {uuid.uuid4()} {doc.index} ".encode().ljust(size, b".")
    body = {"file_name": f"doc-{doc.index}.txt", "file_size": len(data)}
    ticket = await call(session, load, "POST", "/docs/request-upload", json=body)
    doc.doc_id = ticket["id"]
    await put(session, ticket["upload"], data)
    watcher = asyncio.create_task(watch(session, load, doc, ticket["urls"]["events"]))
    await asyncio.sleep(0.05)  # subscribed before the confirm, as a browser would be
    sent = time.monotonic()
    await call(session, load, "POST", f"/docs/{doc.doc_id}/confirm-upload")
    doc.confirmed_at = sent
    await watcher


async def call(
    session: aiohttp.ClientSession, load: Load, method: str, path: str, **kwargs: Any
) -> dict[str, Any]:
    """One API call, retried through outages like a patient client."""
    headers = {"Authorization": f"Bearer {load.key}"}
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            async with session.request(method, load.base + path, headers=headers, **kwargs) as resp:
                load.statuses[resp.status] += 1
                text = await resp.text()
                if resp.status < 500:
                    reply: dict[str, Any] = json.loads(text)
                    if resp.status >= 400:
                        raise RuntimeError(f"{method} {path}: {resp.status} {text[:200]}")
                    return reply
                pause = float(resp.headers.get("Retry-After", "0.5"))
        except (aiohttp.ClientConnectionError, TimeoutError):
            pause = 0.5  # the gateway itself is away: nobody answered
        if time.monotonic() > deadline:
            raise TimeoutError(f"{method} {path}: gave up after {RETRY_FOR_S:.0f}s")
        await asyncio.sleep(pause)


async def put(session: aiohttp.ClientSession, plan: dict[str, Any], data: bytes) -> None:
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            async with session.put(plan["url"], data=data, headers=plan["headers"]) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientConnectionError, TimeoutError):
            pass  # storage is away
        if time.monotonic() > deadline:
            raise TimeoutError("PUT: gave up")
        await asyncio.sleep(0.5)


async def watch(session: aiohttp.ClientSession, load: Load, doc: Doc, url: str) -> None:
    """Follow the stream to ``done``, reconnecting with Last-Event-ID when it breaks."""
    deadline = time.monotonic() + RETRY_FOR_S * 2
    while doc.done_at is None and time.monotonic() < deadline:
        headers = {"Last-Event-ID": doc.event_ids[-1]} if doc.event_ids else {}
        try:
            async with session.get(url, headers=headers) as resp:
                load.statuses[resp.status] += 1
                if resp.status == 200:
                    await _read_stream(resp, doc)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError):
            pass
        if doc.done_at is None:
            doc.reconnects += 1
            await asyncio.sleep(0.5)


def _after_requested(data: str) -> float | None:
    return None if json.loads(data).get("status") == "requested" else time.monotonic()


async def _read_stream(resp: aiohttp.ClientResponse, doc: Doc) -> None:
    event, event_id = "", None
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            if event_id is not None:
                doc.event_ids.append(event_id)
            if event == "verdict":
                doc.verdict_events.append(json.loads(line[6:]))
            elif event == "status" and doc.first_status_at is None:
                doc.first_status_at = _after_requested(line[6:])
            if event == "done":
                doc.done_at = time.monotonic()
                return
            event, event_id = "", None
