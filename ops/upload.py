"""``intellidox upload FILE...``: upload, wait for every engine, say what they found.

Made for scripts and CI pipelines.  stdout carries results only: one line per file, or one JSON
document per file with ``--json``; the progress bar, live events and retries go to stderr.  The
exit code is clamscan's: 0 when no engine flagged anything, 1 when one said malicious or
suspicious, 2 on errors (ops/upload_report.py).  Transient failures - a refused connection,
429, 503, other 5xx - are retried with jittered exponential backoff, honouring ``Retry-After``
(ops/backoff.py); an event stream that breaks is resumed with ``Last-Event-ID``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ops.backoff import Backoff, GaveUp, Transient, parse_retry_after, retrying, transient_status
from ops.hashing import file_sha256
from ops.settings import Settings, get_settings
from ops.upload_report import ERROR, FileResult, exit_code, from_api

CHUNK = 1 << 20
# No total limit (1 GiB may take a while), but a silent peer is a failure: heartbeats come
# every 15 s on an event stream.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
NETWORK_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)


USAGE = """Upload files, wait until every scanner has answered, and say what they found.

stdout: one line per file (FILE: OK 0/9 engines flagged / FILE: FLAGGED 1/9 engines (...) /
FILE: ERROR ...), or one JSON document per file with --json.  stderr: progress, live events,
retries.  Exit status: 0 no engine flagged anything, 1 some engine said malicious or
suspicious, 2 an error (a file not uploaded or not scanned; 2 wins over 1).  Transient
failures (refused connections, 429, 503, other 5xx) are retried with backoff, honouring
Retry-After."""


class ApiError(Exception):
    """A refusal another try will not change (401, 404, 409, 413, 422, ...)."""


@dataclass(frozen=True)
class Options:
    as_json: bool = False
    wait: bool = True
    quiet: bool = False
    timeout_s: float = 600.0
    backoff: Backoff = field(default_factory=Backoff)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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


def _error_text(text: str) -> str:
    """The reason in an error body: the gateway's JSON ``error``, S3's XML code and message
    (never the rest, which can echo the signed request), or the start of the text."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    found = dict(re.findall(r"<(Code|Message)>([^<]{0,200})</", text))
    if found:
        return ": ".join(found[k] for k in ("Code", "Message") if k in found)
    return text[:200].strip()


def check(label: str, status: int, headers: Mapping[str, str], text: str) -> None:
    """Raise Transient or ApiError for an error answer; return for a success."""
    if status < 400:
        return
    reason = f"{label}: {status} {_error_text(text)}"
    if transient_status(status):
        raise Transient(reason, parse_retry_after(headers.get("Retry-After")))
    raise ApiError(reason)


class Client:
    """The gateway's API and the object store's upload URLs, each call retried if transient.

    The API key goes to the gateway only, never to the pre-signed storage URLs, and those URLs
    never appear in a message (they are credentials until they expire)."""

    def __init__(
        self, session: aiohttp.ClientSession, base: str, api_key: str, options: Options
    ) -> None:
        self.session, self.base, self.options = session, base, options
        self.auth = {"Authorization": f"Bearer {api_key}"}

    def retried(self, number: int, delay: float, exc: BaseException) -> None:
        say(f"  {exc}; retry {number} in {delay:.1f} s")

    async def api(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        label = f"{method} {path.split('?')[0]}"
        url = path if path.startswith("http") else self.base + path

        async def once() -> tuple[int, dict[str, Any]]:
            try:
                async with self.session.request(method, url, headers=self.auth, **kwargs) as resp:
                    text = await resp.text()
                    check(label, resp.status, resp.headers, text)
                    return resp.status, json.loads(text) if text else {}
            except NETWORK_ERRORS as exc:
                raise Transient(f"{label}: {exc or type(exc).__name__}") from exc

        return await retrying(once, self.options.backoff, self.retried)

    async def put(
        self, url: str, headers: dict[str, str], part: tuple[Path, int, int], bar: Progress
    ) -> None:
        """PUT ``length`` bytes of ``path`` from ``offset`` to a pre-signed URL."""
        path, offset, length = part
        headers = {**headers, "Content-Length": str(length)}
        start = bar.done

        async def once() -> None:
            bar.done = start  # a retry sends the whole range again
            try:
                body = _chunks(path, offset, length, bar)
                async with self.session.put(url, data=body, headers=headers) as resp:
                    check("upload", resp.status, resp.headers, await resp.text())
            except NETWORK_ERRORS as exc:
                raise Transient(f"upload: {exc or type(exc).__name__}") from exc

        await retrying(once, self.options.backoff, self.retried)


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


async def send_file(client: Client, plan: dict[str, Any], path: Path) -> None:
    size = path.stat().st_size
    bar = Progress(f"uploading {path.name}", size)
    try:
        if plan["method"] == "PUT":
            await client.put(plan["url"], plan["headers"], (path, 0, size), bar)
            return
        offset = 0
        for part in plan["parts"]:
            await client.put(part["url"], {}, (path, offset, part["size"]), bar)
            offset += part["size"]
    finally:
        bar.close()


async def sse_events(lines: AsyncIterable[bytes]) -> AsyncIterator[tuple[str, Any, str | None]]:
    """``(event, data, id)`` for each event of a text/event-stream (comments skipped)."""
    event, data, ident = "", list[str](), None
    async for raw in lines:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if event and data:
                yield event, json.loads("\n".join(data)), ident
            event, data, ident = "", [], None
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("id:"):
            ident = line[3:].strip()


def show(event: str, data: dict[str, Any]) -> None:
    """A live event, on stderr."""
    if event == "status":
        reason = f"  ({data['reason']})" if data.get("reason") else ""
        say(f"  status    {data.get('status')}{reason}")
    elif event == "meta":
        pairs = ", ".join(
            f"{k}={v}" for k, v in sorted((data.get("meta") or {}).items()) if v is not None
        )
        digest = str(data.get("sha256"))[:16]
        say(f"  metadata  type={data.get('file_type')} sha256={digest}… {pairs}")
    elif event == "verdict":
        reused = " (reused)" if data.get("reused") else ""
        name, verdict = data.get("scanner"), data.get("verdict")
        say(f"  verdict   {name:<14} {verdict:<11} {data.get('result')}{reused}")


@dataclass
class Stream:
    """One document's event stream, resumable: the URL (its token) and the last event id."""

    url: str
    doc_id: str
    last_id: str | None = None


async def watch(client: Client, stream: Stream) -> None:
    """Follow the stream until ``done``; a break after some events starts a fresh retry
    budget (the stream was making progress), a break before any uses it up."""
    while not await retrying(
        lambda: _follow(client, stream), client.options.backoff, client.retried
    ):
        pass


async def _follow(client: Client, stream: Stream) -> bool:
    headers = {"Last-Event-ID": stream.last_id} if stream.last_id else {}
    progressed = False
    try:
        async with client.session.get(stream.url, headers=headers) as resp:
            if resp.status == 401:  # the token expired (after an hour): meta signs a fresh one
                _, meta = await client.api("GET", f"/docs/{stream.doc_id}/meta")
                stream.url = meta["urls"]["events"]
                raise Transient("events: token expired, renewed", 0.0)
            check(
                "events", resp.status, resp.headers, await resp.text() if resp.status >= 400 else ""
            )
            async for event, data, ident in sse_events(resp.content):
                stream.last_id, progressed = ident or stream.last_id, True
                if event == "done":
                    return True
                if not client.options.quiet:
                    show(event, data)
    except NETWORK_ERRORS as exc:
        if not progressed:
            raise Transient(f"events: {exc or type(exc).__name__}") from exc
    if not progressed:
        raise Transient("events: the stream ended before done")
    return False


@dataclass
class Attempt:
    """What is known about one file so far (an error still reports it)."""

    path: Path
    doc_id: str | None = None
    sha256: str | None = None
    size: int | None = None

    def failed(self, error: str) -> FileResult:
        return FileResult(
            str(self.path), self.path.name, self.doc_id, self.sha256, self.size, error=error
        )


async def upload_one(client: Client, attempt: Attempt) -> FileResult:
    path, options = attempt.path, client.options
    attempt.size = path.stat().st_size
    attempt.sha256 = await asyncio.to_thread(file_sha256, path)
    body = {"file_name": path.name, "file_size": attempt.size, "sha256": attempt.sha256}
    status, ticket = await client.api("POST", "/docs/request-upload", json=body)
    attempt.doc_id = doc_id = str(ticket["id"])
    duplicate = ticket.get("duplicate_of") if status == 200 else None
    say(f"{path}: document {doc_id}" + (" (same content scanned before)" if duplicate else ""))
    if duplicate is None:
        await send_file(client, ticket["upload"], path)
        _, confirmed = await client.api("POST", f"/docs/{doc_id}/confirm-upload")
        if not options.wait:
            return FileResult(
                str(path),
                path.name,
                doc_id,
                attempt.sha256,
                attempt.size,
                status=confirmed["status"],
            )
        stream = Stream(str(ticket["urls"]["events"]), doc_id)
        try:
            await asyncio.wait_for(watch(client, stream), options.timeout_s)
        except TimeoutError:
            return attempt.failed(f"no result after {options.timeout_s:g} s")
    _, meta = await client.api("GET", f"/docs/{doc_id}/meta")
    _, scan = await client.api("GET", f"/docs/{doc_id}/scan-results")
    return from_api(str(path), meta, scan, duplicate)


async def _one(client: Client, path: Path) -> FileResult:
    attempt = Attempt(path)
    try:
        return await upload_one(client, attempt)
    except (ApiError, GaveUp, OSError, aiohttp.ClientError, ValueError, KeyError) as exc:
        message = str(exc) or type(exc).__name__
        say(f"{path}: error: {message}")
        return attempt.failed(message)


async def upload_all(files: list[str], api_key: str, base: str, options: Options) -> int:
    results = []
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        client = Client(session, base, api_key, options)
        for name in files:
            result = await _one(client, Path(name))
            print(result.render(options.as_json), flush=True)
            results.append(result)
    return exit_code(results)


def upload_files(settings: Settings, args: argparse.Namespace) -> int:
    base = (args.url or settings.gateway_url).rstrip("/")
    api_key = args.api_key or settings.api_key or settings.dev_api_key
    options = Options(
        as_json=args.json,
        wait=not args.no_wait,
        quiet=args.quiet,
        timeout_s=args.timeout,
        backoff=Backoff(attempts=args.retries + 1),
    )
    try:
        return asyncio.run(upload_all(args.files, api_key, base, options))
    except Exception as exc:  # never exit 1 ("flagged") by accident: an error is 2
        say(f"intellidox upload: error: {exc!r}")
        return ERROR


def cmd_upload(args: argparse.Namespace) -> int:
    return upload_files(get_settings(), args)


def add_upload_verb(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    upload = verbs.add_parser(
        "upload",
        help="upload files, wait for every engine; exit 0 clean, 1 flagged, 2 error",
        description=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upload.add_argument("files", nargs="+", metavar="FILE")
    upload.add_argument(
        "--api-key", default=None, help="default: INTELLIDOX_API_KEY, else the dev key"
    )
    upload.add_argument("--url", default=None, help="gateway URL (default: the local one)")
    upload.add_argument("--json", action="store_true", help="one JSON document per file on stdout")
    upload.add_argument(
        "--no-wait", action="store_true", help="return once the upload is confirmed"
    )
    upload.add_argument("-q", "--quiet", action="store_true", help="no live events on stderr")
    upload.add_argument(
        "--retries", type=_count, default=5, help="retries of a transient failure (default 5)"
    )
    upload.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for a file's verdicts"
    )
    upload.set_defaults(handler=cmd_upload)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value
