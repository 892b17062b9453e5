"""1 GiB: request-upload → metadata, against a raw PUT + GET + SHA-256 of the same bytes.

Run with the services up (``make run`` or ``intellidox up``):

    .venv/bin/python -m ops.bench.bigfile [--mib 1024] [--rounds 3]

Raw: one ``put_object`` of the file, then one ``get_object`` streamed through SHA-256, with
boto3 straight to the store.  IntelliDox: request-upload, PUT the multipart plan's parts (4 at
a time, as the upload client and page do), confirm, and wait until ``meta`` carries the
SHA-256 (extraction read the pinned object, hashed it and ran the extractor script).
Reported per round and as medians, with the ratio IntelliDox / raw.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from ops.bench.load import Load, call
from ops.s3 import s3_client
from ops.settings import Settings, get_settings
from ops.stack import Stack

CHUNK = 8 << 20
PARALLEL_PARTS = 4


def make_file(mib: int) -> Path:
    path = Path(tempfile.mkdtemp(prefix="intellidox-big-")) / "big.bin"
    block = os.urandom(1 << 20)
    with open(path, "wb") as out:
        for i in range(mib):
            out.write(block[:-8] + i.to_bytes(8, "big"))  # distinct, incompressible, fast
    return path


def raw_round(settings: Settings, path: Path) -> float:
    s3 = s3_client(settings, read_timeout=300)
    bucket, key = settings.s3.scripts_bucket, f"bench/raw-{time.time_ns()}"
    started = time.monotonic()
    with open(path, "rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(CHUNK):
        digest.update(chunk)
    elapsed = time.monotonic() - started
    s3.delete_object(Bucket=bucket, Key=key)
    return elapsed


async def _put_part(session: aiohttp.ClientSession, path: Path, part: dict[str, Any]) -> None:
    offset = (part["part_number"] - 1) * part["part_size"]
    data = await asyncio.to_thread(_read_at, path, offset, part["size"])
    async with session.put(part["url"], data=data) as resp:
        assert resp.status == 200, await resp.text()


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


async def ours_round(stack: Stack, path: Path) -> float:
    size = path.stat().st_size
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        load = Load(stack.url, stack.settings.dev_api_key)
        started = time.monotonic()
        body = {"file_name": "big.bin", "file_size": size}
        ticket = await call(session, load, "POST", "/docs/request-upload", json=body)
        plan = ticket["upload"]
        parts = [{**p, "part_size": plan["part_size"]} for p in plan["parts"]]
        gate = asyncio.Semaphore(PARALLEL_PARTS)

        async def one(part: dict[str, Any]) -> None:
            async with gate:
                await _put_part(session, path, part)

        await asyncio.gather(*(one(p) for p in parts))
        uploaded = time.monotonic()
        await call(session, load, "POST", f"/docs/{ticket['id']}/confirm-upload")
        confirmed = time.monotonic()
        while True:
            meta = await call(session, load, "GET", f"/docs/{ticket['id']}/meta")
            if meta["sha256"]:
                done = time.monotonic()
                print(
                    f"  upload {uploaded - started:.2f} s, confirm {confirmed - uploaded:.2f} s, "
                    f"to metadata {done - confirmed:.2f} s "
                    f"(extraction {meta['meta'].get('extraction_ms')} ms)"
                )
                return done - started
            await asyncio.sleep(0.05)


async def run(mib: int, rounds: int) -> None:
    path = make_file(mib)
    logs = Path(tempfile.mkdtemp(prefix="intellidox-bigfile-"))
    stack = Stack.create(get_settings().with_overrides(meta_cache_s=0), logs)
    try:
        stack.start_all(["sim:simulated?latency_ms=0"])
        raws, ours = [], []
        for i in range(rounds):
            raws.append(await asyncio.to_thread(raw_round, stack.settings, path))
            ours.append(await ours_round(stack, path))
            print(f"round {i + 1}: raw {raws[-1]:.2f} s, IntelliDox {ours[-1]:.2f} s", flush=True)
        raw, mine = statistics.median(raws), statistics.median(ours)
        print(
            f"{mib} MiB, median of {rounds}: raw PUT + GET + SHA-256 {raw:.2f} s; "
            f"request-upload → metadata {mine:.2f} s; ratio {mine / raw:.2f}"
        )
    finally:
        stack.close()
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.mib, args.rounds))


if __name__ == "__main__":
    main()
