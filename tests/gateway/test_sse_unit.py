"""Pure logic of the event stream and the results view, without a server."""

import asyncio
import contextlib
import tracemalloc
import uuid
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway import db, readafter, streaming
from gateway.hub import Inbox
from gateway.readafter import ProjectionWatch, Seen, caught_up, caught_up_view
from gateway.sse import Cursor, Fact, Sequencer, heartbeat
from gateway.streaming import (
    EVENT_STREAM_HEADERS,
    EventStream,
    Projections,
    start_event_stream,
    visible_status,
)
from gateway.verdicts import verdict_view
from tests.gateway.client import parse_sse


def test_cursor_round_trips_and_bad_ids_start_over() -> None:
    assert str(Cursor.parse("3.10.42")) == "3.10.42"
    assert Cursor.parse("garbage") == Cursor() == Cursor.parse(None)


def test_facts_only_advance_past_what_the_cursor_covers() -> None:
    cursor = Cursor(2, 10, 42)
    assert Fact("status", -1, {"status": "uploaded"}).advances(cursor) is None
    assert Fact("status", -1, {"status": "done"}).advances(cursor) == Cursor(3, 10, 42)
    assert Fact("meta", 10, {}).advances(cursor) is None
    assert Fact("verdict", 43, {}).advances(cursor) == Cursor(2, 10, 43)


def test_done_shows_only_when_every_expected_verdict_is_readable() -> None:
    assert visible_status("done", 3, 2) == "in_progress"
    assert visible_status("done", 3, 3) == "done"
    assert visible_status("failed", None, 0) == "failed"


def _status(status: str) -> Fact:
    return Fact("status", -1, {"status": status})


def _verdict(offset: int, scanner: str, verdict: str = "clean") -> Fact:
    return Fact("verdict", offset, {"scanner": scanner, "verdict": verdict})


def _shown(facts: list[Fact]) -> list[tuple[str, object, object]]:
    return [
        (f.kind, f.data.get("status") or f.data.get("verdict"), f.data.get("late")) for f in facts
    ]


def test_verdicts_wait_for_the_in_progress_status() -> None:
    seq = Sequencer()
    assert seq.accept(_status("uploaded")) == [_status("uploaded")]
    assert seq.accept(_verdict(7, "a")) == []  # came first off the topics: held
    assert seq.accept(Fact("meta", 3, {})) == [Fact("meta", 3, {})]
    assert seq.accept(_verdict(8, "b")) == []
    out = seq.accept(_status("in_progress"))
    assert [(f.kind, f.offset) for f in out] == [("status", -1), ("verdict", 7), ("verdict", 8)]
    assert seq.accept(_verdict(9, "c")) == [_verdict(9, "c")]


def test_a_verdict_after_a_timeout_is_late_and_a_timeout_after_a_verdict_is_dropped() -> None:
    seq = Sequencer()
    seq.accept(_status("in_progress"))
    assert _shown(seq.accept(_verdict(5, "a", "timeout"))) == [("verdict", "timeout", None)]
    assert _shown(seq.accept(_verdict(6, "a", "malicious"))) == [("verdict", "malicious", True)]
    assert seq.accept(_verdict(7, "b", "clean")) == [_verdict(7, "b", "clean")]
    assert seq.accept(_verdict(8, "b", "timeout")) == []  # the tracker raced the engine
    assert seq.accept(_verdict(9, "a", "timeout")) == []


def test_a_request_scanned_again_after_a_crash_is_shown_once() -> None:
    seq = Sequencer()
    seq.accept(_status("in_progress"))
    assert seq.accept(_verdict(5, "a", "clean")) == [_verdict(5, "a", "clean")]
    assert seq.accept(_verdict(11, "a", "clean")) == []  # redelivered, scanned twice


def test_a_late_verdict_reads_as_late_from_events_and_from_rows() -> None:
    event = {"scanner": "a", "verdict": "clean", "result": "ok", "late": True}
    assert verdict_view(event)["late"] is True
    row = {"scanner": "a", "verdict": "clean", "kafka_offset": 9, "timeout_offset": 7}
    assert verdict_view(row)["late"] is True
    assert verdict_view({**row, "kafka_offset": 6})["late"] is False  # raced, not replaced
    assert verdict_view({**row, "verdict": "timeout"})["late"] is False
    assert verdict_view({"scanner": "a", "verdict": "clean"})["late"] is False


def _doc(status: str, expected: int | None = 2, meta_offset: int | None = 4) -> dict[str, object]:
    return {"process_status": status, "expected_scanners": expected, "meta_offset": meta_offset}


def _rows(**verdicts: str) -> list[dict[str, object]]:
    return [{"scanner": s, "verdict": v} for s, v in verdicts.items()]


def test_done_waits_until_the_projections_say_what_the_stream_said() -> None:
    seen = Seen()
    for fact in (_status("done"), Fact("meta", 4, {}), _verdict(8, "a"), _verdict(9, "b")):
        seen.note(fact.kind, fact.offset, fact.data)
    assert caught_up(_doc("done"), _rows(a="clean", b="clean"), seen)
    assert not caught_up(None, [], seen)
    assert not caught_up(_doc("in_progress"), _rows(a="clean", b="clean"), seen)
    assert not caught_up(_doc("done"), _rows(a="clean"), seen)  # a verdict not written yet
    assert not caught_up(_doc("done", meta_offset=None), _rows(a="clean", b="clean"), seen)
    assert not caught_up(_doc("done", meta_offset=3), _rows(a="clean", b="clean"), seen)
    assert not caught_up(_doc("done"), _rows(a="clean", b="timeout"), seen)  # not replaced yet
    seen.note("verdict", 10, {"scanner": "c", "verdict": "timeout"})
    assert not caught_up(_doc("done", expected=3), _rows(a="clean", b="clean"), seen)
    assert caught_up(_doc("done", expected=3), _rows(a="clean", b="clean", c="timeout"), seen)
    assert caught_up(_doc("done", expected=3), _rows(a="clean", b="clean", c="clean"), seen)


def test_the_snapshot_a_stream_keeps_decides_done_as_the_whole_row_would() -> None:
    seen = Seen()
    for fact in (_status("done"), Fact("meta", 4, {}), _verdict(8, "a")):
        seen.note(fact.kind, fact.offset, fact.data)
    for status in ("uploaded", "done"):
        for extra in ({}, {"meta_offset": 4}, {"meta_offset": 4, "expected_scanners": 2}):
            row = {**_snapshot_doc(status), **extra}
            for rows in ([], _rows(a="clean"), _rows(a="clean", b="clean")):
                assert caught_up(caught_up_view(row), rows, seen) == caught_up(row, rows, seen)
    assert len(caught_up_view(_snapshot_doc("done"))) == 3  # not the whole row


class _Stores:
    """Postgres and Cassandra as the watch reads them: each read answers the next of its
    rows (the last one from then on), and is counted."""

    def __init__(self, rows: list[dict[tuple[str, uuid.UUID], dict[str, object]]]) -> None:
        self.rows, self.row_reads, self.verdict_reads = rows, 0, 0
        self.verdicts: dict[uuid.UUID, list[dict[str, object]]] = {}
        self.fail_next = False

    async def read(self, _pool: object, _query: object) -> object:
        self.row_reads += 1
        if self.fail_next:
            self.fail_next = False
            raise OSError("postgres away for a moment")
        return self.rows.pop(0) if len(self.rows) > 1 else self.rows[0]

    async def read_verdicts(self, _state: object, ids: list[uuid.UUID]) -> object:
        self.verdict_reads += 1
        return {doc_id: self.verdicts.get(doc_id, []) for doc_id in ids}


def _watch(monkeypatch: pytest.MonkeyPatch, stores: _Stores) -> ProjectionWatch:
    monkeypatch.setattr(db, "read", stores.read)
    monkeypatch.setattr(readafter, "read_verdict_classes", stores.read_verdicts)
    return ProjectionWatch(SimpleNamespace(pool=None), poll_s=0.005)  # type: ignore[arg-type]


def _seen_done(*scanners: str) -> Seen:
    seen = Seen(status="done")
    for scanner in scanners:
        seen.note("verdict", 3, {"scanner": scanner, "verdict": "clean"})
    return seen


async def test_one_read_serves_every_waiting_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [uuid.uuid4() for _ in range(20)]
    lagging = {("t", d): _doc("in_progress", None) for d in docs}
    done = {("t", d): _doc("done", 1) for d in docs}
    stores = _Stores([lagging, lagging, done])
    stores.verdicts = {d: _rows(a="clean") for d in docs}
    watch = _watch(monkeypatch, stores)
    waits = [watch.wait("t", d, _seen_done("a"), wait_s=5) for d in docs]
    assert await asyncio.gather(*waits) == [True] * 20
    assert stores.row_reads == 3  # not 3 per stream
    assert stores.verdict_reads == 1  # only once the rows caught up: the status lags most


async def test_a_wait_outlasts_a_store_away_and_gives_up_in_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = uuid.uuid4()
    stores = _Stores([{("t", doc): _doc("done", 1)}])
    stores.fail_next = True
    stores.verdicts = {doc: _rows(a="clean")}
    watch = _watch(monkeypatch, stores)
    assert await watch.wait("t", doc, _seen_done("a"), wait_s=5)
    assert stores.row_reads == 2
    assert not await watch.wait("t", doc, _seen_done("a", "b"), wait_s=0.05)  # b never comes
    assert not watch._waiting


async def test_a_row_of_another_tenant_is_not_what_a_stream_waits_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = uuid.uuid4()
    stores = _Stores([{("other", doc): _doc("done", 1)}])
    stores.verdicts = {doc: _rows(a="clean")}
    watch = _watch(monkeypatch, stores)
    assert not await watch.wait("t", doc, _seen_done("a"), wait_s=0.05)
    assert stores.verdict_reads == 0


class _Response:
    def __init__(self) -> None:
        self.raw = b""

    async def write(self, data: bytes) -> None:
        self.raw += data


def _stream(response: _Response, reads: list[Projections]) -> EventStream:
    async def wait(seen: Seen) -> bool:
        while not caught_up(*(reads.pop(0) if len(reads) > 1 else reads[0]), seen):
            await asyncio.sleep(0.001)
        return True

    return EventStream(response, Cursor(), wait)  # type: ignore[arg-type]


def _snapshot_doc(status: str) -> dict[str, object]:
    return {
        "id": "d",
        "file_name": "f",
        "file_size": 1,
        "file_type": None,
        "content_type": None,
        "sha256": None,
        "process_status": status,
        "created_at": None,
        "uploaded_at": None,
        "updated_at": None,
        "meta_data": {},
        "script_version": None,
        "expected_scanners": None,
        "meta_offset": None,
    }


async def test_a_stream_holds_verdicts_for_their_status_and_says_done_once_readable() -> None:
    response = _Response()
    lagging: Projections = (_snapshot_doc("in_progress"), [])
    readable = ({**_snapshot_doc("done"), "expected_scanners": 1}, _rows(a="clean"))
    stream = _stream(response, [lagging, lagging, readable])
    await stream.send_snapshot(_snapshot_doc("uploaded"), [])
    queue = Inbox()
    for fact in (_verdict(5, "a"), Fact("status", 3, {"status": "in_progress", "expected": 1})):
        queue.put_nowait(fact)
    queue.put_nowait(Fact("status", 4, {"status": "done", "expected": 1}))
    await asyncio.wait_for(stream.follow(queue), 10)
    events = [e.event if e.event != "status" else e.data["status"] for e in parse_sse(response.raw)]
    assert events == ["uploaded", "in_progress", "verdict", "done", "done"]


async def test_verdicts_whose_status_never_comes_are_sent_after_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streaming, "ORDER_WAIT_S", 0.05)
    monkeypatch.setattr(streaming, "DONE_GRACE_S", 0.05)
    response = _Response()
    stream = _stream(response, [({**_snapshot_doc("done"), "expected_scanners": 2}, [])])
    await stream.send_snapshot(_snapshot_doc("uploaded"), [])
    queue = Inbox()
    queue.put_nowait(_verdict(5, "a"))
    follow = asyncio.create_task(stream.follow(queue))
    await asyncio.sleep(0.3)
    assert [e.event for e in parse_sse(response.raw)] == ["status", "verdict"]
    follow.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follow


async def test_an_idle_stream_has_no_timer_and_says_it_is_alive_when_the_hub_nudges_it() -> None:
    response = _Response()
    stream = _stream(response, [(_snapshot_doc("requested"), [])])
    await stream.send_snapshot(_snapshot_doc("requested"), [])
    queue = Inbox()
    follow = asyncio.create_task(stream.follow(queue))
    try:
        await asyncio.sleep(0.05)
        assert not response.raw.endswith(heartbeat())
        assert asyncio.get_running_loop()._scheduled == []  # type: ignore[attr-defined]
        queue.nudge()
        await asyncio.sleep(0.01)
        assert response.raw.endswith(heartbeat()) and not follow.done()
    finally:
        follow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow


class _Sink:
    async def write(self, data: bytes) -> None:
        pass


async def test_an_idle_stream_costs_little_besides_its_connection() -> None:
    # One gateway holds 10,000 of them: the stream's own share (its state, its task's wait,
    # its inbox) must stay a small part of the ~10 KB aiohttp spends on each connection.
    doc = _snapshot_doc("requested")

    async def wait(_seen: Seen) -> bool:
        return True

    async def hold(n: int) -> list[asyncio.Task[None]]:
        tasks = []
        for _ in range(n):
            stream = EventStream(_Sink(), Cursor(), wait)  # type: ignore[arg-type]
            await stream.send_snapshot(doc, [])
            tasks.append(asyncio.create_task(stream.follow(Inbox())))
        await asyncio.sleep(0.01)
        return tasks

    held = await hold(10)  # warm: interned strings, caches
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held += await hold(1000)
        per_stream = (tracemalloc.get_traced_memory()[0] - before) / 1000
    finally:
        tracemalloc.stop()
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
    assert per_stream < 2500, per_stream  # 3.1 KB with a timer per stream


async def test_a_started_stream_has_sent_its_headers_and_holds_none() -> None:
    held: list[web.StreamResponse] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await start_event_stream(request)
        held.append(response)
        await response.write(b": hello\n\n")
        return response

    app = web.Application()
    app.router.add_get("/events", handler)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/events")
        assert resp.status == 200 and await resp.read() == b": hello\n\n"
        for name, value in EVENT_STREAM_HEADERS.items():
            assert resp.headers[name] == value
    assert len(held) == 1 and not held[0].headers  # an idle stream keeps no copy of them
