"""Cassandra goes away under a running gateway: an event stream is refused with an honest 503
and Retry-After before it starts (never a second response written into a started stream,
which a client can only read as garbage), and streams work again once Cassandra is back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from ops.settings import Settings
from ops.stack import Stack
from tests.gateway.client import Api
from tests.plugins.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxied(settings: Settings, tmp_path: Path) -> Iterator[tuple[Stack, CuttableProxy]]:
    proxy = CuttableProxy(settings.cassandra.host, settings.cassandra.port)
    base = settings.with_overrides(cassandra=settings.cassandra.with_overrides(port=proxy.port))
    stack = Stack.create(base, tmp_path, prefix=f"csout{uuid.uuid4().hex[:8]}.")
    try:
        stack.start("gateway", "gateway", ready_port=stack.settings.bind.gateway_port)
        yield stack, proxy
    finally:
        stack.close()
        proxy.close()


async def _open_stream(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    """Status, Retry-After and the first bytes of the body (a started stream stays open, so
    only its first chunk is read)."""
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=20)) as resp:
        first = await resp.content.readany()
        return resp.status, resp.headers.get("Retry-After", ""), first.decode()


async def test_events_answer_503_before_the_stream_starts_while_cassandra_is_away(
    proxied: tuple[Stack, CuttableProxy],
) -> None:
    stack, proxy = proxied
    async with aiohttp.ClientSession() as session:
        api = Api(session, stack.url, stack.settings.dev_api_key)
        ticket = await api.request_upload("a.txt", b"hello")
        assert ticket.status == 201
        events = ticket.body["urls"]["events"]
        status, _, first = await _open_stream(session, events)
        assert status == 200 and first.startswith("retry:")

        proxy.cut()
        status, retry_after, body = await _open_stream(session, events)
        assert status == 503, body
        assert retry_after.isdigit() and '"status": 503' in body

        proxy.restore()
        for _ in range(40):  # the driver reconnects within its 2 s cap
            status, _, first = await _open_stream(session, events)
            if status == 200:
                break
            await asyncio.sleep(0.5)
        assert status == 200 and first.startswith("retry:")
