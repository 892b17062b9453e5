"""Rate limits on the real gateway: 429s that say which limit, one bucket for two gateways,
event streams that are never starved, uploads in progress, and the shared bucket's accuracy."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import psycopg
import pytest

from ops.ids import uuid7
from tests.gateway.client import Api, Reply
from tests.gateway.conftest import SPEC, conforms
from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def second_gateway(pipeline: Pipeline) -> Iterator[str]:
    """Another gateway process of the test pipeline (same database, topics and settings)."""
    name = f"gateway-b-{uuid.uuid4().hex[:6]}"
    url = pipeline.start_gateway(name)
    try:
        yield url
    finally:
        pipeline.stop(name)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _tenant(pipeline: Pipeline, **limits: Any) -> str:
    return pipeline.add_tenant(f"rl-{uuid.uuid4().hex[:8]}", **limits)


async def _meta(api: Api) -> Reply:
    """A cheap authenticated request (an unknown id: 404), counted like any other."""
    return await api.call("GET", f"/docs/{uuid7()}/meta")


async def test_over_the_limit_is_429_with_retry_after_naming_the_limit(
    pipeline: Pipeline, session: aiohttp.ClientSession
) -> None:
    api = Api(session, pipeline.url, _tenant(pipeline, rate_per_s=1, rate_burst=3))
    statuses = [(await _meta(api)).status for _ in range(3)]
    assert statuses == [404, 404, 404]
    async with session.get(
        f"{pipeline.url}/docs/{uuid7()}/meta", headers={"Authorization": f"Bearer {api.key}"}
    ) as resp:
        body = await resp.json()
        assert resp.status == 429, body
        assert resp.headers["Retry-After"] == "1"
    assert body["limit"] == "requests" and body["status"] == 429 and body["retry_after_s"] == 1
    assert "1 requests/s with bursts of 3" in body["error"]
    conforms(body, "RateLimited")
    conforms(body, "Error")  # still the common error shape
    await asyncio.sleep(1.05)  # Retry-After was honest: a token is there again
    assert (await _meta(api)).status == 404


async def test_another_tenant_and_unauthenticated_requests_are_not_held_up(
    pipeline: Pipeline, session: aiohttp.ClientSession
) -> None:
    busy = Api(session, pipeline.url, _tenant(pipeline, rate_per_s=0.1, rate_burst=1))
    other = Api(session, pipeline.url, _tenant(pipeline, rate_per_s=0.1, rate_burst=1))
    assert (await _meta(busy)).status == 404
    assert (await _meta(busy)).status == 429
    assert (await _meta(other)).status == 404
    for _ in range(5):  # no tenant, no bucket: still 401, never 429
        assert (await busy.call("GET", f"/docs/{uuid7()}/meta", key="")).status == 401


async def test_two_gateways_share_one_bucket(
    pipeline: Pipeline, second_gateway: str, session: aiohttp.ClientSession
) -> None:
    rate, burst, seconds = 4.0, 4, 3.0
    key = _tenant(pipeline, rate_per_s=rate, rate_burst=burst)
    gateways = [Api(session, pipeline.url, key), Api(session, second_gateway, key)]
    answers: Counter[tuple[int, int]] = Counter()
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < seconds:
        answers[(i % 2, (await _meta(gateways[i % 2])).status)] += 1
        i += 1
    elapsed = time.monotonic() - started
    admitted = sum(n for (_, status), n in answers.items() if status == 404)
    allowed = burst + rate * elapsed
    # One bucket per process would let through about twice as much.
    assert allowed - 3 <= admitted <= allowed + 1, (admitted, allowed, answers)
    for side in (0, 1):  # both gateways admitted and refused
        assert answers[(side, 404)] > 0 and answers[(side, 429)] > 0, answers


async def test_event_stream_reconnects_are_not_starved_by_api_calls(
    pipeline: Pipeline, second_gateway: str, session: aiohttp.ClientSession
) -> None:
    api = Api(session, pipeline.url, _tenant(pipeline, rate_per_s=0.1, rate_burst=2))
    ticket = await api.request_upload("watched.txt", b"watch me")
    assert ticket.status == 201
    while (await _meta(api)).status != 429:  # the request bucket is empty now
        pass
    events = ticket.body["urls"]["events"]
    for base in [pipeline.url, second_gateway] * 4:  # a browser reconnecting, on any gateway
        url = events.replace(pipeline.url, base)
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert (await _meta(api)).status == 429  # and the API is still limited


async def test_event_streams_over_the_stream_rate_are_429_and_bad_tokens_401_uncounted(
    pipeline: Pipeline, session: aiohttp.ClientSession
) -> None:
    name = f"gateway-ev-{uuid.uuid4().hex[:6]}"
    url = pipeline.start_gateway(name, RATE_LIMIT_EVENTS_PER_S="0.01", RATE_LIMIT_EVENTS_BURST="2")
    try:
        api = Api(session, url, _tenant(pipeline))
        ticket = await api.request_upload("streamed.txt", b"stream me")
        events = ticket.body["urls"]["events"].replace(pipeline.url, url)
        forged = events.split("token=")[0] + "token=forged"
        assert [await _opened(session, forged) for _ in range(3)] == [401] * 3
        assert [await _opened(session, events) for _ in range(3)] == [200, 200, 429]
    finally:
        pipeline.stop(name)


async def _opened(session: aiohttp.ClientSession, url: str) -> int:
    """The status an event stream opens with (then closed at once)."""
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
        if resp.status == 429:
            assert (await resp.json())["limit"] == "events"
        return resp.status


async def test_uploads_in_progress_are_limited_across_gateways(
    pipeline: Pipeline, second_gateway: str, session: aiohttp.ClientSession
) -> None:
    key = _tenant(pipeline, max_uploads=2)
    first, second = Api(session, pipeline.url, key), Api(session, second_gateway, key)
    a = await first.request_upload("a.txt", b"a" * 10)
    b = await second.request_upload("b.txt", b"b" * 11)
    assert (a.status, b.status) == (201, 201)
    for api in (first, second):
        refused = await api.request_upload("c.txt", b"c" * 12)
        assert refused.status == 429, refused.body
        assert refused.body["limit"] == "uploads" and 1 <= refused.body["retry_after_s"] <= 5
        conforms(refused.body, "RateLimited")
    # Once a's bytes are in and confirmed, a slot is free again.
    assert await first.put(a.body["upload"], b"a" * 10) == 200
    assert (await first.call("POST", f"/docs/{a.body['id']}/confirm-upload")).status == 202
    assert (await second.request_upload("c.txt", b"c" * 12)).status == 201


async def test_concurrent_upload_requests_never_pass_the_limit(
    pipeline: Pipeline, second_gateway: str, session: aiohttp.ClientSession
) -> None:
    key = _tenant(pipeline, max_uploads=3)
    apis = [Api(session, pipeline.url, key), Api(session, second_gateway, key)]
    replies = await asyncio.gather(
        *(apis[i % 2].request_upload(f"f{i}.txt", b"x" * (i + 1)) for i in range(12))
    )
    assert sorted(r.status for r in replies) == [201] * 3 + [429] * 9


async def test_metrics_count_what_the_limits_refused(
    pipeline: Pipeline, session: aiohttp.ClientSession
) -> None:
    api = Api(session, pipeline.url, _tenant(pipeline, rate_per_s=0.1, rate_burst=1))
    before = await _refused_requests(session, pipeline)
    assert (await _meta(api)).status == 404
    assert [(await _meta(api)).status for _ in range(3)] == [429] * 3
    assert await _refused_requests(session, pipeline) == before + 3


async def _refused_requests(session: aiohttp.ClientSession, pipeline: Pipeline) -> float:
    headers = {"Authorization": f"Bearer {pipeline.settings.metrics_token}"}
    async with session.get(f"{pipeline.url}/metrics", headers=headers) as resp:
        assert resp.status == 200
        text = await resp.text()
    line = 'intellidox_rate_limited_requests_total{limit="requests"} '
    values = [float(row[len(line) :]) for row in text.splitlines() if row.startswith(line)]
    return values[0] if values else 0.0


def test_every_operation_documents_429() -> None:
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            assert "429" in operation["responses"], (method, path)


def test_the_shared_bucket_admits_its_rate_from_two_clients(
    pg_schema: tuple[psycopg.Connection[Any], str], pg_conninfo: str
) -> None:
    """take_tokens itself: two connections taking as fast as they can, 3 s, 20/s burst 10."""
    _, schema = pg_schema
    rate, burst, seconds = 20.0, 10, 3.0
    taken = [0, 0]

    def client(slot: int) -> None:
        with psycopg.connect(pg_conninfo, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {schema}")
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                row: Any = conn.execute(
                    "SELECT granted FROM take_tokens('requests:t', %s, %s, 1)", (rate, burst)
                ).fetchone()
                taken[slot] += row[0]

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    allowed = burst + rate * (time.monotonic() - started)
    assert allowed - 2 <= sum(taken) <= allowed, (taken, allowed)
    assert min(taken) > 0
