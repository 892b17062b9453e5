"""``intellidox upload FILE...``: upload with a progress bar, then watch results arrive live."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from ops.hashing import file_sha256
from ops.settings import Settings

CHUNK = 1 << 20


class Progress:
    """A one-line progress bar on stderr (silent when stderr is not a terminal)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def add(self, amount: int) -> None:
        self.done += amount
        if self.tty:
            share = self.done / self.total
            rate = self.done / max(time.monotonic() - self.started, 1e-6) / 2**20
            bar = "#" * int(share * 30)
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {share:6.1%} {rate:7.1f} MiB/s")
            sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


async def _chunks(path: Path, offset: int, length: int, bar: Progress) -> AsyncIterator[bytes]:
    with open(path, "rb") as handle:
        handle.seek(offset)
        left = length
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            bar.add(len(chunk))
            yield chunk


async def _put(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    path: Path,
    offset: int,
    length: int,
    bar: Progress,
) -> str:
    headers = {**headers, "Content-Length": str(length)}
    async with session.put(url, data=_chunks(path, offset, length, bar), headers=headers) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"upload failed: {resp.status} {await resp.text()}")
        return resp.headers.get("ETag", "")


async def send_file(session: aiohttp.ClientSession, plan: dict[str, Any], path: Path) -> None:
    bar = Progress(f"uploading {path.name}", path.stat().st_size)
    try:
        if plan["method"] == "PUT":
            await _put(session, plan["url"], plan["headers"], path, 0, path.stat().st_size, bar)
            return
        offset = 0
        for part in plan["parts"]:
            await _put(session, part["url"], {}, path, offset, part["size"], bar)
            offset += part["size"]
    finally:
        bar.close()


async def _api(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as resp:
        body = await resp.json(content_type=None)
        if resp.status >= 400:
            raise RuntimeError(f"{method} {url}: {resp.status} {body.get('error', body)}")
        return resp.status, body


def show(event: str, data: dict[str, Any]) -> None:
    if event == "status":
        print(
            f"  status    {data.get('status')}"
            + (f"  ({data['reason']})" if data.get("reason") else "")
        )
    elif event == "meta":
        pairs = ", ".join(
            f"{k}={v}" for k, v in sorted((data.get("meta") or {}).items()) if v is not None
        )
        digest = str(data.get("sha256"))[:16]
        print(f"  metadata  type={data.get('file_type')} sha256={digest}… {pairs}")
    elif event == "verdict":
        reused = " (reused)" if data.get("reused") else ""
        name, verdict = data.get("scanner"), data.get("verdict")
        print(f"  verdict   {name:<14} {verdict:<11} {data.get('result')}{reused}")
    elif event == "done":
        print(f"  done      {data.get('scanned')}/{data.get('expected')} verdicts")


async def watch(session: aiohttp.ClientSession, events_url: str) -> None:
    async with session.get(events_url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
        event = None
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                show(event, json.loads(line[6:]))
                if event == "done":
                    return


async def upload_one(session: aiohttp.ClientSession, base: str, path: Path) -> None:
    size = path.stat().st_size
    body = {"file_name": path.name, "file_size": size, "sha256": file_sha256(path)}
    status, doc = await _api(session, "POST", f"{base}/docs/request-upload", json=body)
    print(f"{path.name}: document {doc['id']}")
    if status == 200:
        print(f"  same content scanned before: reusing {doc['duplicate_of']}")
    else:
        await send_file(session, doc["upload"], path)
        await _api(session, "POST", f"{base}/docs/{doc['id']}/confirm-upload")
    await watch(session, doc["urls"]["events"])


async def _upload_all(settings: Settings, files: list[str], api_key: str, base: str) -> int:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for name in files:
            try:
                await upload_one(session, base, Path(name))
            except (OSError, RuntimeError, aiohttp.ClientError) as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                return 1
    return 0


def upload_files(settings: Settings, files: list[str], api_key: str | None, url: str | None) -> int:
    base = (url or f"http://{settings.host}:{settings.gateway_port}").rstrip("/")
    return asyncio.run(_upload_all(settings, files, api_key or settings.dev_api_key, base))
