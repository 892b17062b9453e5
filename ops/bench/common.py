"""Shared bits for the benchmarks: a stack on its own topics, percentiles, an upload client."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from ops.settings import get_settings
from ops.stack import Stack


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, values_ms: list[float]) -> str:
    return (
        f"{name}: n={len(values_ms)} p50={statistics.median(values_ms):.1f} ms "
        f"p90={percentile(values_ms, 90):.1f} ms p99={percentile(values_ms, 99):.1f} ms "
        f"max={max(values_ms):.1f} ms"
    )


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, load {load[0]:.2f} at start"


def new_stack(
    scanners: list[str], gateway_wrapper: tuple[str, ...] = (), **overrides: Any
) -> Stack:
    logs = Path(tempfile.mkdtemp(prefix="intellidox-bench-"))
    stack = Stack.create(get_settings().with_overrides(**overrides), logs)
    try:
        stack.start_all(scanners, gateway_wrapper)
    except Exception:
        stack.close()
        raise
    return stack


async def request_and_put(session: aiohttp.ClientSession, base: str, key: str) -> dict[str, Any]:
    data = f"bench {uuid.uuid4()}".encode()
    headers = {"Authorization": f"Bearer {key}"}
    body = {"file_name": "bench.txt", "file_size": len(data)}
    async with session.post(f"{base}/docs/request-upload", json=body, headers=headers) as resp:
        ticket: dict[str, Any] = json.loads(await resp.text())
    upload = ticket["upload"]
    async with session.put(upload["url"], data=data, headers=upload["headers"]) as resp:
        assert resp.status == 200, await resp.text()
    return ticket
