"""GET /docs/{id}/meta on one core: requests per second and latency percentiles, with wrk.

Run with the services up:

    .venv/bin/python -m ops.bench.meta_throughput [--seconds 15 --connections 32]

The gateway is pinned to CPU 0 and wrk to CPU 1 (``taskset``), so the figure is one core's.
Needs ``wrk`` (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys

import aiohttp

from ops.bench.common import machine, new_stack, request_and_put


async def _a_document(base: str, key: str) -> str:
    async with aiohttp.ClientSession() as session:
        ticket = await request_and_put(session, base, key)
        async with session.post(
            f"{base}/docs/{ticket['id']}/confirm-upload", headers={"Authorization": f"Bearer {key}"}
        ) as resp:
            assert resp.status == 202
    return str(ticket["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-cache", action="store_true", help="every request reads Postgres")
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("needs wrk and taskset: apt-get install -y wrk util-linux")
    stack = new_stack(
        ["sim0:simulated?latency_ms=0"],
        gateway_wrapper=("taskset", "-c", "0"),
        meta_cache_s=0.0 if args.no_cache else 1.0,
    )
    try:
        key = stack.settings.dev_api_key
        doc_id = asyncio.run(_a_document(stack.url, key))
        url = f"{stack.url}/docs/{doc_id}/meta"
        cache = "off" if args.no_cache else "on (1 s, evicted by events)"
        print(f"machine: {machine()}; gateway pinned to CPU 0, wrk on CPU 1; cache {cache}")
        wrk = [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{args.connections}",
            f"-d{args.seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {key}",
            url,
        ]
        subprocess.run([*wrk[:5], "-d3s", *wrk[6:]], check=True, capture_output=True)  # warm-up
        print(subprocess.run(wrk, check=True, capture_output=True, text=True).stdout)
    finally:
        stack.close()


if __name__ == "__main__":
    main()
