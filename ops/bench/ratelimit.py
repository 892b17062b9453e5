"""The rate limiter: how exactly it admits a tenant's rate with one and two gateways, and
what it costs a request.

Run with the services up:  .venv/bin/python -m ops.bench.ratelimit [--seconds 10]

Starts two gateway processes on fresh topics (no worker, no scanners: the requests measured
are authenticated reads of an unknown id, 404, which every request's limiter sees first).
- Accuracy: closed-loop clients ask as fast as they can for ``--seconds`` with a key limited
  to R requests/s and a burst of R; admitted = answers that were not 429, against what a token
  bucket allows (burst + R x elapsed).  With two gateways every client alternates between
  them; R = 20/s (leases of 2 tokens) and 200/s (leases of 20: where leases held by one
  gateway could starve the other).
- Overhead: sequential requests to one gateway, median latency, for a key whose every request
  needs a lease (5/s and a huge burst: a lease of 1, one Postgres round trip each) and for a key
  whose leases last (1e6/s: spent locally); the difference is what a round trip adds.  Then
  the limiter in-process: take_tokens' round trip and a local spend, median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections import Counter
from functools import partial
from pathlib import Path

import aiohttp
import psycopg
from psycopg_pool import AsyncConnectionPool

from gateway.auth import key_digest
from gateway.ratelimit import Leases, take_tokens
from ops.bench.common import machine
from ops.ids import uuid7
from ops.settings import get_settings
from ops.stack import Stack


def add_key(dsn: str, tenant: str, per_s: float, burst: int) -> str:
    key = f"bench-{tenant}"
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO api_keys (key_sha256, tenant, rate_per_s, rate_burst)"
            " VALUES (%s, %s, %s, %s)",
            (key_digest(key), tenant, per_s, burst),
        )
    return key


def drop_keys(dsn: str, tenants: list[str]) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM api_keys WHERE tenant = ANY(%s)", (tenants,))
        buckets = [f"{kind}:{t}" for t in tenants for kind in ("requests", "events")]
        conn.execute("DELETE FROM rate_buckets WHERE bucket = ANY(%s)", (buckets,))


async def hammer(
    session: aiohttp.ClientSession, urls: list[str], key: str, seconds: float, clients: int
) -> tuple[Counter[int], float]:
    """Closed loop: ``clients`` tasks, each alternating over ``urls``; answers by status."""
    statuses: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {key}"}
    started = time.monotonic()

    async def client(offset: int) -> None:
        i = offset
        while time.monotonic() - started < seconds:
            async with session.get(
                f"{urls[i % len(urls)]}/docs/{uuid7()}/meta", headers=headers
            ) as r:
                await r.read()
                statuses[r.status] += 1
            i += 1

    await asyncio.gather(*(client(n) for n in range(clients)))
    return statuses, time.monotonic() - started


async def accuracy(
    session: aiohttp.ClientSession, dsn: str, urls: list[str], per_s: float, seconds: float
) -> str:
    tenant = f"rl-bench-{uuid.uuid4().hex[:8]}"
    key = add_key(dsn, tenant, per_s, int(per_s))
    try:
        statuses, elapsed = await hammer(session, urls, key, seconds, clients=8)
    finally:
        drop_keys(dsn, [tenant])
    admitted = sum(n for status, n in statuses.items() if status != 429)
    allowed = per_s + per_s * elapsed
    total = sum(statuses.values())
    return (
        f"{len(urls)} gateway(s), {per_s:g}/s burst {per_s:g}: admitted {admitted} of {total} "
        f"in {elapsed:.1f} s; a bucket allows {allowed:.0f}: {admitted / allowed:.1%} "
        f"(other statuses: {dict(statuses)})"
    )


async def latencies(session: aiohttp.ClientSession, url: str, key: str, n: int) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    out = []
    for _ in range(n):
        started = time.perf_counter()
        async with session.get(f"{url}/docs/{uuid7()}/meta", headers=headers) as resp:
            await resp.read()
            assert resp.status == 404, resp.status
        out.append((time.perf_counter() - started) * 1000)
    return out


async def overhead(session: aiohttp.ClientSession, dsn: str, url: str, n: int) -> list[str]:
    tenants = [f"rl-bench-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    every = add_key(dsn, tenants[0], 5.0, 10**9)  # lease of 1 token: a round trip each
    local = add_key(dsn, tenants[1], 1e6, 10**9)  # leases of 100000: spent locally
    try:
        await latencies(session, url, every, 50)  # warm: keys cached, connections open
        await latencies(session, url, local, 50)
        rounds: dict[str, list[float]] = {"every": [], "local": []}
        for _ in range(5):  # interleaved, so drift in the machine's load hits both alike
            rounds["every"] += await latencies(session, url, every, n // 5)
            rounds["local"] += await latencies(session, url, local, n // 5)
    finally:
        drop_keys(dsn, tenants)
    med_every, med_local = (statistics.median(rounds[k]) for k in ("every", "local"))
    return [
        f"HTTP, one gateway, {n} sequential requests each: median {med_local:.2f} ms with "
        f"leases spent locally, {med_every:.2f} ms with a lease round trip per request "
        f"(+{med_every - med_local:.2f} ms)"
    ]


async def in_process(dsn: str, n: int) -> list[str]:
    pool = AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True)
    bucket = f"requests:rl-bench-{uuid.uuid4().hex[:8]}"
    try:
        trips = []
        for _ in range(n):
            started = time.perf_counter()
            await take_tokens(pool, bucket, 1e6, 10**9, 1)
            trips.append((time.perf_counter() - started) * 1e6)
        leases = Leases(partial(take_tokens, pool))
        await leases.acquire(bucket, 1e7, 10**9)  # one lease of 10**6 tokens
        spends = []
        for _ in range(n):
            started = time.perf_counter()
            await leases.acquire(bucket, 1e7, 10**9)
            spends.append((time.perf_counter() - started) * 1e6)
    finally:
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM rate_buckets WHERE bucket = %s", (bucket,))
        await pool.close()
    return [
        f"in process, {n} calls: take_tokens round trip median {statistics.median(trips):.0f} us,"
        f" a local spend {statistics.median(spends):.1f} us"
    ]


async def run(seconds: float, requests: int) -> None:
    settings = get_settings()
    stack = Stack.create(settings, Path(tempfile.mkdtemp(prefix="intellidox-bench-")))
    try:
        stack.start("gateway", "gateway", ready_port=stack.settings.bind.gateway_port)
        second = stack.start_gateway("gateway-b")
        print(f"machine: {machine()}")
        dsn = stack.settings.postgres.dsn
        limit = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=limit) as session:
            for per_s in (20.0, 200.0):
                print(await accuracy(session, dsn, [stack.url], per_s, seconds))
                print(await accuracy(session, dsn, [stack.url, second], per_s, seconds))
            for line in await overhead(session, dsn, stack.url, requests):
                print(line)
        for line in await in_process(dsn, requests):
            print(line)
    finally:
        stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per accuracy run")
    parser.add_argument("--requests", type=int, default=1000, help="per overhead sample")
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.requests))


if __name__ == "__main__":
    main()
