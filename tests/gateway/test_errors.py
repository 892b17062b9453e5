"""Errors as the client sees them: a store away is a 503 with Retry-After, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botocore.exceptions import EndpointConnectionError
from cassandra.cluster import NoHostAvailable
from prometheus_client import REGISTRY
from psycopg import OperationalError

from gateway.edge import edge


def _app(exc: BaseException) -> web.Application:
    async def handler(_request: web.Request) -> web.Response:
        raise exc

    app = web.Application(middlewares=[edge])
    app.router.add_get("/", handler)
    return app


@pytest.fixture
async def client() -> AsyncIterator[Callable[[BaseException], TestClient]]:
    clients: list[TestClient] = []

    def make(exc: BaseException) -> TestClient:
        test_client = TestClient(TestServer(_app(exc)))
        clients.append(test_client)
        return test_client

    yield make
    for c in clients:
        await c.close()


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("connection refused"),
        NoHostAvailable("no host", {}),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ],
)
async def test_a_store_outage_is_a_503_with_retry_after(
    client: Callable[[BaseException], TestClient], exc: BaseException
) -> None:
    test_client = client(exc)
    await test_client.start_server()
    resp = await test_client.get("/")
    assert resp.status == 503 and resp.headers["Retry-After"].isdigit()
    assert (await resp.json())["status"] == 503


async def test_anything_else_is_a_500_without_details(
    client: Callable[[BaseException], TestClient],
) -> None:
    test_client = client(RuntimeError("secret detail"))
    await test_client.start_server()
    resp = await test_client.get("/")
    assert resp.status == 500 and "secret" not in await resp.text()


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (NoHostAvailable("no host", {}), "503"),
        (RuntimeError("bug"), "500"),
        (web.HTTPFound("/x"), "302"),
    ],
)
async def test_the_request_is_counted_under_the_status_the_client_got(
    client: Callable[[BaseException], TestClient], exc: BaseException, status: str
) -> None:
    test_client = client(exc)
    await test_client.start_server()
    labels = {"method": "GET", "route": "/", "status": status}
    before = REGISTRY.get_sample_value("intellidox_http_requests_total", labels) or 0.0
    resp = await test_client.get("/", allow_redirects=False)
    assert str(resp.status) == status
    assert REGISTRY.get_sample_value("intellidox_http_requests_total", labels) == before + 1
