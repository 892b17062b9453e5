"""Server-sent events on the wire, against the running gateway: exact bytes, live, resume."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import pytest

from gateway.sse import Cursor
from tests.gateway.client import Api, Reply, SseEvent, parse_sse

pytestmark = pytest.mark.integration


def _event_bytes(event_id: str, event: str, data: dict[str, object]) -> bytes:
    body = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return f"id: {event_id}\nevent: {event}\ndata: {body}\n\n".encode()


async def test_a_finished_document_streams_its_state_then_done_exactly(api: Api) -> None:
    ticket = await api.upload("wire.txt", b"on the wire " + uuid.uuid4().hex.encode())
    await api.wait_done(ticket["id"])
    raw = await api.sse_raw(ticket["urls"]["events"])
    events = parse_sse(raw)
    assert raw.startswith(b"retry: 1000\n\n")
    assert [e.event for e in events] == ["status", "meta", "verdict", "verdict", "verdict", "done"]
    # Rebuild every byte from what the REST API says, then compare the whole stream.
    cursors = [Cursor.parse(e.id) for e in events]
    assert cursors[0].status_rank == 3 and cursors[1].meta_offset >= 0
    assert [c.verdict_offset for c in cursors[2:5]] == sorted(
        {c.verdict_offset for c in cursors[2:5]}
    )
    expected = b"retry: 1000\n\n" + b"".join(
        _event_bytes(str(c), e.event, e.data) for c, e in zip(cursors, events, strict=True)
    )
    assert raw == expected
    meta = (await api.call("GET", f"/docs/{ticket['id']}/meta")).body
    assert events[0].data["status"] == "done" and events[0].data["file_name"] == "wire.txt"
    assert events[1].data["meta"] == meta["meta"]
    results = (await api.call("GET", f"/docs/{ticket['id']}/scan-results")).body
    by_scanner = {r["scanner"]: r for r in results["scan_results"]}
    assert all(by_scanner[e.data["scanner"]] == e.data for e in events[2:5])
    assert events[-1].data == {"expected": 3, "scanned": 3, "status": "done"}
    assert events[-1].id == events[-2].id


async def test_resume_with_last_event_id_has_no_gaps_and_no_repeats(api: Api) -> None:
    ticket = await api.upload("resume.txt", b"resume " + uuid.uuid4().hex.encode())
    await api.wait_done(ticket["id"])
    full = parse_sse(await api.sse_raw(ticket["urls"]["events"]))
    for cut in range(len(full) - 1):
        rest = parse_sse(await api.sse_raw(ticket["urls"]["events"], last_event_id=full[cut].id))
        assert [(e.event, e.id) for e in rest] == [(e.event, e.id) for e in full[cut + 1 :]]


async def test_a_live_stream_sees_every_step_in_order_and_ends(api: Api) -> None:
    data = b"live " + uuid.uuid4().hex.encode()
    ticket = await api.request_upload("live.txt", data)
    doc_id = ticket.body["id"]
    stream = asyncio.create_task(api.sse_raw(ticket.body["urls"]["events"]))
    await asyncio.sleep(0.3)  # subscribed before the upload starts
    assert await api.put(ticket.body["upload"], data) == 200
    assert (await api.call("POST", f"/docs/{doc_id}/confirm-upload")).status == 202
    events = parse_sse(await asyncio.wait_for(stream, 60))
    statuses = [e.data["status"] for e in events if e.event == "status"]
    assert statuses == ["requested", "uploaded", "in_progress", "done"]
    assert sum(e.event == "meta" for e in events) == 1
    assert sorted(e.data["scanner"] for e in events if e.event == "verdict") == [
        "clamav",
        "sim-a",
        "sim-b",
    ]
    assert events[-1].event == "done"
    ids = [e.id for e in events[:-1]]
    assert len(set(ids)) == len(ids)


async def test_the_events_url_works_without_headers_but_not_for_another_document(api: Api) -> None:
    ticket = await api.upload("token.txt", b"token " + uuid.uuid4().hex.encode())
    other = await api.request_upload("other.txt", b"x")
    token = ticket["urls"]["events"].split("token=")[1]
    wrong = other.body["urls"]["events"].split("?")[0] + "?token=" + token
    reply = await api.call("GET", wrong.removeprefix(api.base), key="")
    assert reply.status == 401 and "token" in reply.body["error"]
    forged = await api.call("GET", f"/docs/{ticket['id']}/events?token=abc.1.def", key="")
    assert forged.status == 401


async def _watch(api: Api, name: str) -> tuple[list[SseEvent], Reply, Reply]:
    """Upload with the stream open from the start; the moment it says ``done``, read
    scan-results and meta (as a client would), then return all three."""
    data = f"{name} {uuid.uuid4().hex}".encode()
    ticket = await api.request_upload(name, data)
    urls = ticket.body["urls"]
    events: list[SseEvent] = []
    async with api.session.get(urls["events"], timeout=aiohttp.ClientTimeout(total=60)) as resp:
        assert await api.put(ticket.body["upload"], data) == 200
        confirm = await api.call("POST", f"/docs/{ticket.body['id']}/confirm-upload")
        assert confirm.status == 202
        block = b""
        async for line in resp.content:
            block += line
            if line != b"\n":
                continue
            events.extend(parse_sse(block))
            block = b""
            if events and events[-1].event == "done":
                break
    doc_id = ticket.body["id"]
    results = await api.call("GET", f"/docs/{doc_id}/scan-results")
    meta = await api.call("GET", f"/docs/{doc_id}/meta")
    return events, results, meta


async def test_in_progress_reaches_the_stream_before_any_verdict(api: Api) -> None:
    watched = await asyncio.gather(*(_watch(api, f"order-{i}.txt") for i in range(8)))
    for events, _, _ in watched:
        kinds = [
            e.data["status"] if e.event == "status" else e.event
            for e in events
            if e.event in ("status", "verdict")
        ]
        assert "in_progress" in kinds and kinds.index("in_progress") < kinds.index("verdict")


async def test_the_moment_the_stream_says_done_rest_says_done_with_every_verdict(
    api: Api,
) -> None:
    watched = await asyncio.gather(*(_watch(api, f"rad-{i}.txt") for i in range(10)))
    for events, results, meta in watched:
        done = events[-1]
        assert done.event == "done" and done.data["status"] == "done"
        streamed = {e.data["scanner"]: e.data for e in events if e.event == "verdict"}
        assert results.body["status"] == "done" and meta.body["status"] == "done"
        assert results.body["summary"]["scanned"] == done.data["expected"] == len(streamed)
        assert {r["scanner"]: r for r in results.body["scan_results"]} == streamed
