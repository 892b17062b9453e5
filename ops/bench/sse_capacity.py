"""SSE capacity: one gateway process holding N idle event streams, and its reads meanwhile.

Run with the services up (``intellidox up``); it starts one gateway process of its own on
fresh topics (no worker, no scanners):

    .venv/bin/python -m ops.bench.sse_capacity                 # 10,000 streams
    .venv/bin/python -m ops.bench.sse_capacity --streams 20000 --hold 60 --meta 500

Creates ``--streams`` documents (request-upload only: a document that stays ``requested``
keeps its stream open, sending a heartbeat every ``sse_heartbeat_s``), then opens one event
stream per document, ``--open-concurrency`` at a time, each counted open once its snapshot
arrived.  Reported: the gateway's RSS before and after, its CPU seconds per minute idle with
no streams and while holding them (nothing but heartbeats), and ``GET /docs/{id}/meta``
latency percentiles of ``--meta`` requests spread evenly over ``--meta-seconds``, before the
streams (for reference) and while they are open.  The stack's tenant has no rate limits, the
events bucket included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from ops.bench.common import percentile
from ops.bench.load import Load, call
from ops.settings import get_settings
from ops.stack import Stack

SPARE_FILES = 2048  # files besides the streams: pools, Kafka, logs, the client's own sockets


def raise_open_files(needed: int) -> tuple[int, int]:
    """Soft (and, when privileged, hard) RLIMIT_NOFILE of at least ``needed``; the stack's
    processes inherit it.  Returns the limits now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < needed:
        with contextlib.suppress(ValueError, OSError):  # only root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, needed), hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@dataclass
class Tally:
    """What the held streams saw."""

    opened: int = 0
    refused: int = 0
    broken: int = 0  # streams that ended while they should have been held
    heartbeats: int = 0
    events: int = 0


async def create_docs(session: aiohttp.ClientSession, load: Load, n: int) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(32)

    async def one(i: int) -> dict[str, Any]:
        async with gate:
            body = {"file_name": f"idle-{i}.txt", "file_size": 10}
            return await call(session, load, "POST", "/docs/request-upload", json=body)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def hold_stream(
    session: aiohttp.ClientSession, url: str, gate: asyncio.Semaphore, tally: Tally
) -> None:
    async with gate:  # a few at a time: the gateway reads Postgres and Cassandra for each
        resp = await session.get(url)
        if resp.status != 200:
            tally.refused += 1
            resp.release()
            return
        async for line in resp.content:  # up to the snapshot: the stream is live
            if line.startswith(b"event: "):
                tally.events += 1
                break
    tally.opened += 1
    try:
        async for line in resp.content:
            if line.startswith(b":"):
                tally.heartbeats += 1
            elif line.startswith(b"event: "):
                tally.events += 1
        tally.broken += 1
    except (aiohttp.ClientError, TimeoutError):
        tally.broken += 1
    finally:
        resp.release()


async def meta_latencies(
    session: aiohttp.ClientSession, load: Load, ids: list[str], n: int, seconds: float
) -> list[float]:
    """``n`` GETs of random documents' meta, one at a time, spread over ``seconds``; ms."""
    headers = {"Authorization": f"Bearer {load.key}"}
    out: list[float] = []
    start = time.monotonic()
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i * seconds / n - time.monotonic()))
        began = time.perf_counter()
        async with session.get(f"{load.base}/docs/{random.choice(ids)}/meta", headers=headers) as r:
            await r.read()
            assert r.status == 200, r.status
        out.append((time.perf_counter() - began) * 1000)
    return out


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def cpu_per_minute(proc: psutil.Process, seconds: float) -> float:
    before = cpu_s(proc)
    await asyncio.sleep(seconds)
    return (cpu_s(proc) - before) * 60 / seconds


def mib(n_bytes: int) -> float:
    return n_bytes / (1 << 20)


def load_avg() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} / {five:.2f}"


def lat(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):.1f} ms, p90 {percentile(values, 90):.1f} ms, "
        f"p99 {percentile(values, 99):.1f} ms, max {max(values):.1f} ms (n={len(values)})"
    )


async def measure(stack: Stack, args: argparse.Namespace) -> None:
    gateway = psutil.Process(stack.procs["gateway"].pid)
    print(f"gateway pid {gateway.pid}: open files {gateway.rlimit(psutil.RLIMIT_NOFILE)}")
    load = Load(stack.url, stack.settings.dev_api_key)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)  # streams are held for long
    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(limit=0)
    ) as session:
        started = time.monotonic()
        tickets = await create_docs(session, load, args.streams)
        took = time.monotonic() - started
        print(f"{args.streams} documents requested in {took:.1f} s ({load_avg()})")
        ids = [t["id"] for t in tickets]
        await meta_latencies(session, load, ids, 50, 2)  # warm: connections, statements
        await asyncio.sleep(5)
        rss0 = gateway.memory_info().rss
        idle = await cpu_per_minute(gateway, args.baseline)
        print(f"no streams: RSS {mib(rss0):.1f} MiB, CPU {idle:.2f} s/min ({load_avg()})")
        before = await meta_latencies(session, load, ids, args.meta // 2, args.meta_seconds / 2)
        print(f"no streams: GET meta {lat(before)} ({load_avg()})")

        tally, gate = Tally(), asyncio.Semaphore(args.open_concurrency)
        started = time.monotonic()
        holders = [
            asyncio.create_task(hold_stream(session, t["urls"]["events"], gate, tally))
            for t in tickets
        ]
        while tally.opened + tally.refused + tally.broken < args.streams:
            await asyncio.sleep(0.2)
        took = time.monotonic() - started
        rss1 = gateway.memory_info().rss
        print(
            f"{tally.opened} streams open in {took:.1f} s ({tally.refused} refused); RSS "
            f"{mib(rss1):.1f} MiB (+{mib(rss1 - rss0):.1f}) ({load_avg()})"
        )
        beats = tally.heartbeats
        holding = await cpu_per_minute(gateway, args.hold)
        print(
            f"holding {args.hold:.0f} s: CPU {holding:.2f} s/min, {tally.heartbeats - beats} "
            f"heartbeats received, {tally.broken} streams broken ({load_avg()})"
        )
        cpu_before = cpu_s(gateway)
        during = await meta_latencies(session, load, ids, args.meta, args.meta_seconds)
        with_meta = (cpu_s(gateway) - cpu_before) * 60 / args.meta_seconds
        rss2 = gateway.memory_info().rss
        print(
            f"{args.streams} streams held: GET meta {lat(during)}; CPU {with_meta:.2f} s/min "
            f"with the GETs ({load_avg()})"
        )
        print(
            f"RSS {mib(rss0):.1f} -> {mib(rss2):.1f} MiB: +{mib(rss2 - rss0):.1f} MiB "
            f"({(rss2 - rss0) / max(1, tally.opened) / 1024:.1f} KiB per stream); still open "
            f"{tally.opened - tally.broken}, broken {tally.broken}, heartbeats {tally.heartbeats}"
        )
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)


async def run(args: argparse.Namespace) -> None:
    soft, hard = raise_open_files(args.streams + SPARE_FILES)
    print(f"open files: {soft} (hard {hard}); {os.cpu_count()} cores, {load_avg()}")
    base = get_settings().with_overrides(rate_limit_events_per_s=1e6, rate_limit_events_burst=10**6)
    stack = Stack.create(base, Path(tempfile.mkdtemp(prefix="intellidox-bench-")))
    try:
        stack.start("gateway", "gateway", ready_port=stack.settings.bind.gateway_port)
        await measure(stack, args)
    finally:
        stack.close()


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=60.0, help="seconds of idle holding")
    parser.add_argument("--baseline", type=float, default=20.0, help="idle seconds, no streams")
    parser.add_argument("--meta", type=int, default=500, help="GET meta while holding")
    parser.add_argument("--meta-seconds", type=float, default=60.0)
    parser.add_argument("--open-concurrency", type=int, default=100)
    return parser.parse_args(argv)


def main() -> None:
    asyncio.run(run(arguments()))


if __name__ == "__main__":
    main()
