"""Storage events mark uploads 'uploaded' (gateway/storage_events.py), on the real pipeline:
the filer's metadata events, the listener process, the outbox, the hub and the SSE stream."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from ops.filer_meta import filer_address
from ops.ids import uuid7
from ops.metrics import scrape, total
from ops.s3 import s3_client
from ops.settings import PREFIX
from ops.stack import free_port
from tests.gateway.client import Api, SseEvent, parse_sse
from tests.plugins.pipeline import Pipeline
from tests.plugins.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.integration
WITHIN_S = 2.0  # the bound: PUT → 'uploaded' on the stream
PROGRESSION = ["requested", "uploaded", "in_progress", "done"]


class LiveStream:
    """An open SSE stream, read in the background: every event with when it arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[float, SseEvent]] = []
        self.arrived = asyncio.Event()

    def statuses(self) -> list[str]:
        return [e.data["status"] for _, e in self.events if e.event == "status"]

    async def wait_status(self, status: str, timeout_s: float = 10) -> float:
        """When ``status`` arrived (monotonic time)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for at, event in self.events:
                if event.event == "status" and event.data["status"] == status:
                    return at
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {status!r} within {timeout_s}s: {self.statuses()}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)

    async def read(self, api: Api, url: str) -> None:
        async with api.session.get(url) as resp:
            assert resp.status == 200
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *blocks, buffer = buffer.split(b"\n\n")
                for block in blocks:
                    for event in parse_sse(block + b"\n\n"):
                        self.events.append((time.monotonic(), event))
                        self.arrived.set()


@contextlib.asynccontextmanager
async def live(api: Api, url: str) -> AsyncIterator[LiveStream]:
    stream = LiveStream()
    task = asyncio.create_task(stream.read(api, url))
    try:
        await stream.wait_status("requested")  # the snapshot: subscribed before any upload
        yield stream
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def meta(api: Api, doc_id: str) -> dict[str, Any]:
    return dict((await api.call("GET", f"/docs/{doc_id}/meta")).body)


def counted(pipeline: Pipeline, port: int, outcome: str) -> float:
    """A listener's ``intellidox_storage_events_total`` of this outcome."""
    url = f"http://{pipeline.settings.bind.host}:{port}/metrics"
    text = scrape(url, pipeline.settings.metrics_token)
    return total(text, "intellidox_storage_events_total", outcome=outcome)


def position_ns(pipeline: Pipeline, port: int) -> int:
    """The filer time of the last event the listener on ``port`` has applied."""
    url = f"http://{pipeline.settings.bind.host}:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(json.loads(response.read())["position_ns"])
    except OSError:
        return 0


async def applied_since(pipeline: Pipeline, port: int, since_ns: int) -> None:
    """Wait until the listener has applied every event up to one at or after ``since_ns``
    (events come in order, and the test's own are the newest)."""
    await _until(lambda: position_ns(pipeline, port) >= since_ns, f"listener on {port}")


async def test_a_put_without_confirm_is_uploaded_and_streamed_within_2_s(api: Api) -> None:
    data = b"landed " + uuid.uuid4().hex.encode()
    ticket = (await api.request_upload("landed.txt", data)).body
    async with live(api, ticket["urls"]["events"]) as stream:
        before = time.time()
        put_at = time.monotonic()
        assert await api.put(ticket["upload"], data) == 200
        after = time.time()
        seen = await stream.wait_status("uploaded")
        assert seen - put_at < WITHIN_S
        doc = await meta(api, ticket["id"])
        assert doc["status"] == "uploaded"  # no confirm was sent
        uploaded_at = datetime.fromisoformat(doc["uploaded_at"]).timestamp()
        assert before - 0.5 <= uploaded_at <= after + 0.5  # when the bytes landed
        # Confirm still starts processing, and does not announce 'uploaded' a second time.
        confirmed = await api.call("POST", f"/docs/{ticket['id']}/confirm-upload")
        assert confirmed.status == 202
        await api.wait_done(ticket["id"])
        await stream.wait_status("done")
        assert stream.statuses() == PROGRESSION
    done = await meta(api, ticket["id"])
    assert done["uploaded_at"] == doc["uploaded_at"]  # confirm kept the storage event's time


async def test_a_confirm_before_the_event_gives_one_progression(
    api: Api, pipeline: Pipeline
) -> None:
    data = b"confirmed first " + uuid.uuid4().hex.encode()
    port = pipeline.settings.bind.storage_events_port
    pipeline.stop("storage-events")  # the event comes only after the confirm
    try:
        ticket = (await api.request_upload("first.txt", data)).body
        async with live(api, ticket["urls"]["events"]) as stream:
            put_ns = time.time_ns()
            assert await api.put(ticket["upload"], data) == 200
            confirmed = await api.call("POST", f"/docs/{ticket['id']}/confirm-upload")
            assert confirmed.status == 202
            await stream.wait_status("uploaded")
            uploaded_at = (await meta(api, ticket["id"]))["uploaded_at"]
            await asyncio.to_thread(pipeline.restart, "storage-events")  # replays the PUT
            await applied_since(pipeline, port, put_ns)
            assert counted(pipeline, port, "unchanged") >= 1
            assert counted(pipeline, port, "uploaded") == 0  # nothing it replayed moved
            await api.wait_done(ticket["id"])
            await stream.wait_status("done")
            assert stream.statuses() == PROGRESSION
        assert (await meta(api, ticket["id"]))["uploaded_at"] == uploaded_at
        again = await api.call("POST", f"/docs/{ticket['id']}/confirm-upload")
        assert again.status == 202 and again.body["status"] == "done"  # still idempotent
    finally:
        if "storage-events" not in pipeline.procs:
            pipeline.restart("storage-events")


async def test_a_multipart_upload_counts_once_it_completes(api: Api, pipeline: Pipeline) -> None:
    data = os.urandom(7 << 20)  # over the test stack's 6 MiB threshold: parts of 5 + 2 MiB
    ticket = (await api.request_upload("parts.bin", data)).body
    plan = ticket["upload"]
    assert plan["method"] == "MULTIPART"
    async with live(api, ticket["urls"]["events"]) as stream:
        offset = 0
        for part in plan["parts"]:
            chunk = data[offset : offset + part["size"]]
            async with api.session.put(part["url"], data=io.BytesIO(chunk)) as resp:
                assert resp.status == 200
            offset += part["size"]
        await asyncio.sleep(1.0)
        assert stream.statuses() == ["requested"]  # parts are not the object
        s3 = s3_client(pipeline.settings)
        bucket, key = f"{pipeline.settings.s3.bucket_prefix}-{_year(ticket['id'])}", ticket["id"]
        listed = await asyncio.to_thread(
            s3.list_parts, Bucket=bucket, Key=key, UploadId=plan["upload_id"]
        )
        parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed["Parts"]]
        completed_at = time.monotonic()
        await asyncio.to_thread(
            s3.complete_multipart_upload,
            Bucket=bucket,
            Key=key,
            UploadId=plan["upload_id"],
            MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
        )
        assert await stream.wait_status("uploaded") - completed_at < WITHIN_S
        # The gateway finds the upload completed already and pins it.
        assert (await api.call("POST", f"/docs/{ticket['id']}/confirm-upload")).status == 202
        await api.wait_done(ticket["id"])
        await stream.wait_status("done")
        assert stream.statuses() == PROGRESSION


async def test_objects_that_are_not_the_pending_upload_are_ignored(
    api: Api, pipeline: Pipeline
) -> None:
    data = b"the real one " + uuid.uuid4().hex.encode()
    ticket = (await api.request_upload("real.txt", data)).body
    doc_id, s3 = ticket["id"], s3_client(pipeline.settings)
    ours = f"{pipeline.settings.s3.bucket_prefix}-{_year(doc_id)}"
    strays = [
        (ours, f"{doc_id}.bak", data),  # not the document's key
        (ours, f"{doc_id}/x", data),  # under it
        (ours, doc_id, data + b"!"),  # the key, but not the declared size
        (ours, str(uuid7()), data),  # a document id that is no document
        (f"{pipeline.settings.s3.bucket_prefix}-scripts", doc_id, data),  # another bucket
        (f"{pipeline.settings.s3.bucket_prefix}-{_year(doc_id) + 1}", doc_id, data),  # year
    ]
    async with live(api, ticket["urls"]["events"]) as stream:
        for bucket, key, body in strays:
            await asyncio.to_thread(s3.put_object, Bucket=bucket, Key=key, Body=body)
        await asyncio.sleep(WITHIN_S)
        assert stream.statuses() == ["requested"]
        assert (await meta(api, doc_id))["status"] == "requested"
        put_at = time.monotonic()  # the listener is alive: the real upload still counts
        assert await api.put(ticket["upload"], data) == 200
        assert await stream.wait_status("uploaded") - put_at < WITHIN_S


async def test_two_listeners_announce_each_upload_once(api: Api, pipeline: Pipeline) -> None:
    ports = [pipeline.settings.bind.storage_events_port, free_port()]
    await asyncio.to_thread(pipeline.start_storage_events, "storage-events-2", ports[1])
    try:
        await applied_since(pipeline, ports[1], time.time_ns() - 10**9)  # replayed its past
        before = [counted(pipeline, port, "uploaded") for port in ports]
        uploads = [b"twice " + uuid.uuid4().hex.encode() for _ in range(4)]
        tickets = [(await api.request_upload("two.txt", d)).body for d in uploads]
        async with contextlib.AsyncExitStack() as streams:
            live_streams = [
                await streams.enter_async_context(live(api, t["urls"]["events"])) for t in tickets
            ]
            last_put_ns = 0
            for ticket, data in zip(tickets, uploads, strict=True):
                last_put_ns = time.time_ns()
                assert await api.put(ticket["upload"], data) == 200
            for stream in live_streams:
                await stream.wait_status("uploaded")
            for port in ports:  # both saw every upload ...
                await applied_since(pipeline, port, last_put_ns)
            after = [counted(pipeline, port, "uploaded") for port in ports]
            assert sum(after) - sum(before) == len(uploads)  # ... and one of them moved each
            await asyncio.sleep(0.5)  # time for a second announcement, were there one
            assert all(s.statuses() == ["requested", "uploaded"] for s in live_streams)
    finally:
        pipeline.stop("storage-events-2")


def _year(doc_id: str) -> int:
    from ops.ids import created_at_of

    return created_at_of(uuid.UUID(doc_id)).year


async def _until(check: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout_s}s")
        await asyncio.sleep(0.2)


async def test_no_upload_is_lost_while_postgres_or_the_filer_is_away(
    api: Api, pipeline: Pipeline
) -> None:
    """The listener keeps its place: what lands during an outage is marked once it is over."""
    settings = pipeline.settings
    postgres = CuttableProxy(settings.postgres.host, settings.postgres.port)
    filer_host, filer_port = filer_address(settings).rsplit(":", 1)
    filer = CuttableProxy(filer_host, int(filer_port))
    port = free_port()
    env = {
        **pipeline.env,
        f"{PREFIX}STORAGE_EVENTS_PORT": str(port),
        f"{PREFIX}POSTGRES_PORT": str(postgres.port),
        f"{PREFIX}FILER_GRPC": f"127.0.0.1:{filer.port}",
    }
    pipeline.stop("storage-events")  # only the listener behind the proxies may mark
    try:
        await asyncio.to_thread(
            pipeline.start, "storage-events-proxied", "storage-events", ready_port=port, env=env
        )
        for proxy in (postgres, filer):
            data = b"during an outage " + uuid.uuid4().hex.encode()
            ticket = (await api.request_upload("outage.txt", data)).body
            async with live(api, ticket["urls"]["events"]) as stream:
                proxy.cut()
                assert await api.put(ticket["upload"], data) == 200
                await asyncio.sleep(WITHIN_S)
                assert stream.statuses() == ["requested"]
                proxy.restore()
                await stream.wait_status("uploaded", timeout_s=20)
                assert stream.statuses() == ["requested", "uploaded"]
    finally:
        postgres.restore()
        filer.restore()
        if "storage-events-proxied" in pipeline.procs:
            pipeline.stop("storage-events-proxied")
        postgres.close()
        filer.close()
        pipeline.restart("storage-events")
