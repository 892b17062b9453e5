"""Postgres goes away under a running gateway: 503 with Retry-After meanwhile, and not one
5xx once it accepts connections again (the pool heals instead of failing request by request)."""

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
    proxy = CuttableProxy(settings.postgres.host, settings.postgres.port)
    base = settings.with_overrides(postgres=settings.postgres.with_overrides(port=proxy.port))
    stack = Stack.create(base, tmp_path, prefix=f"pgout{uuid.uuid4().hex[:8]}.")
    try:
        stack.start("gateway", "gateway", ready_port=stack.settings.bind.gateway_port)
        yield stack, proxy
    finally:
        stack.close()
        proxy.close()


async def test_the_gateway_answers_503_during_the_outage_and_no_5xx_after(
    proxied: tuple[Stack, CuttableProxy],
) -> None:
    stack, proxy = proxied
    async with aiohttp.ClientSession() as session:
        api = Api(session, stack.url, stack.settings.dev_api_key)
        ticket = await api.request_upload("a.txt", b"hello")
        assert ticket.status == 201
        content = f"/docs/{ticket.body['id']}/content"  # never cached: always asks Postgres
        for _ in range(12):  # warm every pooled connection
            assert (await api.call("GET", content)).status == 409

        proxy.cut()
        during = await api.call("GET", content)
        assert during.status == 503, during.body
        async with session.get(stack.url + "/readyz") as ready:
            assert ready.status == 503 and ready.headers["Retry-After"].isdigit()

        proxy.restore()
        statuses = await asyncio.gather(*(api.call("GET", content) for _ in range(40)))
        assert {r.status for r in statuses} == {409}  # answered from Postgres, no 5xx
        assert (
            await api.call("POST", "/docs/request-upload", json={"file_name": "b", "file_size": 1})
        ).status == 201
