"""A small HTTP client for the end-to-end tests: the gateway's API as a browser would use it."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: dict[str, Any]


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, key: str) -> None:
        self.session, self.base, self.key = session, base, key

    def _headers(self, key: str | None) -> dict[str, str]:
        key = self.key if key is None else key
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def call(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> Reply:
        headers = {**self._headers(key), **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.base + path, headers=headers, **kwargs
        ) as resp:
            text = await resp.text()
            return Reply(resp.status, json.loads(text) if text else None)

    async def request_upload(
        self, name: str, data: bytes, declare_sha: bool = False, **extra: Any
    ) -> Reply:
        body: dict[str, Any] = {"file_name": name, "file_size": len(data), **extra}
        if declare_sha:
            body["sha256"] = hashlib.sha256(data).hexdigest()
        return await self.call("POST", "/docs/request-upload", json=body)

    async def put(self, plan: dict[str, Any], data: bytes) -> int:
        async with self.session.put(plan["url"], data=data, headers=plan["headers"]) as resp:
            return resp.status

    async def upload(self, name: str, data: bytes, **extra: Any) -> dict[str, Any]:
        """Request, PUT and confirm; returns the request-upload body."""
        ticket = await self.request_upload(name, data, **extra)
        assert ticket.status == 201, ticket.body
        assert await self.put(ticket.body["upload"], data) == 200
        confirmed = await self.call("POST", f"/docs/{ticket.body['id']}/confirm-upload")
        assert confirmed.status == 202, confirmed.body
        return dict(ticket.body)

    async def wait_done(self, doc_id: str, timeout_s: float = 60) -> dict[str, Any]:
        """Poll scan-results until the status is final (following ``next`` like a client)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            reply = await self.call("GET", f"/docs/{doc_id}/scan-results")
            if reply.body.get("status") in ("done", "failed", "rejected"):
                return dict(reply.body)
            await asyncio.sleep(reply.body.get("next", {}).get("after_ms", 500) / 4000)
        raise AssertionError(f"{doc_id} not done after {timeout_s}s: {reply.body}")

    async def sse_raw(
        self, url: str, last_event_id: str | None = None, timeout_s: float = 60
    ) -> bytes:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with self.session.get(url, headers=headers, timeout=timeout) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            return await resp.read()


def parse_sse(raw: bytes) -> list[SseEvent]:
    events = []
    for block in raw.decode().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ": " not in line:
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            events.append(SseEvent(fields.get("id"), fields["event"], json.loads(fields["data"])))
    return events
