"""The REST routes' edges in-process (aiohttp's test client, no services): who may call, and
what a bad upload request is told, before any store is asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.edge import edge
from gateway.routes import routes
from gateway.state import APP, GatewayState
from ops.settings import get_settings

KEY = "the-tenants-key"


class FakeKeys:
    async def tenant_for(self, key: str) -> str | None:
        return "t" if key == KEY else None


class NoStore:
    """Any use of a store fails the test: these answers come before one is asked."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a store was used: {name}")


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[edge])
    app[APP] = GatewayState(
        settings=get_settings(),
        pool=NoStore(),  # type: ignore[arg-type]
        s3=NoStore(),
        keys=FakeKeys(),  # type: ignore[arg-type]
        cassandra=NoStore(),
        hub=NoStore(),  # type: ignore[arg-type]
    )
    app.add_routes(routes)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("authorization", "words"),
    [(None, "missing credentials"), ("Bearer someone-elses", "unknown or revoked")],
)
async def test_a_caller_without_a_known_key_is_a_401(
    client: TestClient, authorization: str | None, words: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    resp = await client.post("/docs/request-upload", json={}, headers=headers)
    assert resp.status == 401 and words in (await resp.json())["error"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"file_size": 10}, 400, "file_name is required"),
        ({"file_name": "a.txt", "file_size": "10"}, 400, "must be an integer"),
        ({"file_name": "a.txt", "file_size": (1 << 30) + 1}, 413, "over the limit"),
        ({"file_name": "../a.txt", "file_size": 1}, 400, "path separators"),
        ({"file_name": "a.txt", "file_size": 1, "sha256": "xyz"}, 400, "64 hexadecimal"),
        ({"file_name": "a.txt", "file_size": 1, "color": "red"}, 400, "unknown field(s): color"),
    ],
)
async def test_a_bad_upload_request_is_told_what_is_wrong(
    client: TestClient, body: dict[str, object], status: int, words: str
) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    resp = await client.post("/docs/request-upload", json=body, headers=auth)
    reply = await resp.json()
    assert (resp.status, reply["status"]) == (status, status) and words in reply["error"]


async def test_a_body_that_is_not_json_is_a_400(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    resp = await client.post("/docs/request-upload", data=b"{not json", headers=auth)
    assert resp.status == 400 and "not valid JSON" in (await resp.json())["error"]
