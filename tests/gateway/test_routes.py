"""The REST contract's edges against the running gateway: bad input, auth, tenants, confirm."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from ops.ids import uuid7
from ops.kafka import consumer_config, topic
from ops.s3 import s3_client
from schemas import topics
from tests.gateway.client import Api
from tests.gateway.conftest import conforms
from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"file_size": 10}, 400, "file_name is required"),
        ({"file_name": "a.txt"}, 400, "file_size is required"),
        ({"file_name": "a.txt", "file_size": "10"}, 400, "must be an integer"),
        ({"file_name": "a.txt", "file_size": -1}, 400, "must not be negative"),
        ({"file_name": "a.txt", "file_size": (1 << 30) + 1}, 413, "over the limit"),
        ({"file_name": "../a.txt", "file_size": 1}, 400, "path separators"),
        ({"file_name": "a.txt", "file_size": 1, "sha256": "xyz"}, 400, "64 hexadecimal"),
        ({"file_name": "a.txt", "file_size": 1, "color": "red"}, 400, "unknown field(s): color"),
        ({"file_name": "a.txt", "file_size": 1, "content_type": "pdf"}, 400, "MIME type"),
    ],
)
async def test_bad_upload_requests_say_what_is_wrong(
    api: Api, body: dict[str, object], status: int, words: str
) -> None:
    reply = await api.call("POST", "/docs/request-upload", json=body)
    assert reply.status == status
    conforms(reply.body, "Error")
    assert words in reply.body["error"]


async def test_bad_json_is_a_400(api: Api) -> None:
    for raw in (b"{not json", b"[1, 2]"):
        reply = await api.call("POST", "/docs/request-upload", data=raw)
        assert reply.status == 400
        assert "JSON" in reply.body["error"]


@pytest.mark.parametrize("path", ["/meta", "/scan-results", "/events", "/confirm-upload"])
async def test_malformed_and_unknown_ids(api: Api, path: str) -> None:
    method = "POST" if path == "/confirm-upload" else "GET"
    malformed = await api.call(method, f"/docs/not-an-id{path}")
    assert malformed.status == 400 and "not a document id" in malformed.body["error"]
    unknown = await api.call(method, f"/docs/{uuid7()}{path}")
    assert unknown.status == 404 and "not found" in unknown.body["error"]


async def test_every_endpoint_wants_a_key(api: Api) -> None:
    doc_id = uuid7()
    for method, path in [
        ("POST", "/docs/request-upload"),
        ("GET", f"/docs/{doc_id}/meta"),
        ("GET", f"/docs/{doc_id}/scan-results"),
        ("GET", f"/docs/{doc_id}/events"),
        ("POST", f"/docs/{doc_id}/confirm-upload"),
    ]:
        assert (await api.call(method, path, key="")).status == 401
        assert (await api.call(method, path, key="wrong-key")).status == 401


async def test_a_tenant_never_sees_another_tenants_document(api: Api, pipeline: Pipeline) -> None:
    ticket = await api.upload("private.txt", b"mine " + uuid.uuid4().hex.encode())
    other = pipeline.add_tenant(f"other-{uuid.uuid4().hex[:6]}")
    for method, path in [
        ("GET", "/meta"),
        ("GET", "/scan-results"),
        ("GET", "/events"),
        ("POST", "/confirm-upload"),
    ]:
        reply = await api.call(method, f"/docs/{ticket['id']}{path}", key=other)
        assert reply.status == 404, path
    # ...and cannot reuse its verdicts by declaring the same hash.
    await api.wait_done(ticket["id"])
    theirs = Api(api.session, api.base, other)
    dup = await theirs.request_upload("private.txt", b"mine", declare_sha=True)
    assert dup.status == 201


async def test_meta_is_readable_as_soon_as_the_upload_is_requested(api: Api) -> None:
    ticket = await api.request_upload("early.txt", b"early")
    meta = await api.call("GET", f"/docs/{ticket.body['id']}/meta")
    assert meta.status == 200
    assert meta.body["status"] == "requested" and meta.body["file_size"] == 5


async def test_confirm_before_upload_is_a_409(api: Api) -> None:
    ticket = await api.request_upload("later.txt", b"later")
    reply = await api.call("POST", f"/docs/{ticket.body['id']}/confirm-upload")
    assert reply.status == 409 and "not uploaded yet" in reply.body["error"]


async def test_a_size_other_than_declared_is_rejected(api: Api, pipeline: Pipeline) -> None:
    ticket = await api.request_upload("short.txt", b"12345")
    doc_id = ticket.body["id"]
    plan = dict(ticket.body["upload"])
    # The pre-signed URL is bound to the declared length: a longer body is refused by S3.
    async with api.session.put(plan["url"], data=b"123456") as resp:
        assert resp.status == 403
    # Even if a wrong-sized object lands there by another way, confirm refuses it.
    bucket = plan["url"].split("/")[3]
    s3_client(pipeline.settings).put_object(Bucket=bucket, Key=doc_id, Body=b"123456")
    reply = await api.call("POST", f"/docs/{doc_id}/confirm-upload")
    assert reply.status == 422 and "differs from the declared 5 bytes" in reply.body["error"]
    meta = await api.call("GET", f"/docs/{doc_id}/meta")
    assert meta.body["status"] == "rejected"
    again = await api.call("POST", f"/docs/{doc_id}/confirm-upload")
    assert again.status == 422


async def test_double_confirm_answers_the_same_and_runs_once(api: Api, pipeline: Pipeline) -> None:
    data = b"twice " + uuid.uuid4().hex.encode()
    ticket = await api.request_upload("twice.txt", data)
    doc_id = ticket.body["id"]
    assert await api.put(ticket.body["upload"], data) == 200
    first = await api.call("POST", f"/docs/{doc_id}/confirm-upload")
    second = await api.call("POST", f"/docs/{doc_id}/confirm-upload")
    assert first.status == second.status == 202
    assert first.body == second.body
    conforms(first.body, "Confirmed")
    await api.wait_done(doc_id)
    assert count_events(pipeline, topics.DOCS_CONFIRMED, doc_id) == 1
    assert count_events(pipeline, topics.SCAN_REQUESTS, doc_id) == 1


def count_events(
    pipeline: Pipeline, name: str, doc_id: str, keep: Callable[[bytes], bool] = lambda _: True
) -> int:
    """How many events keyed by ``doc_id`` one of the pipeline's topics holds."""
    settings = pipeline.settings
    consumer = Consumer(consumer_config(settings, f"count-{uuid.uuid4().hex}"))
    physical = topic(settings, name)
    try:
        parts = consumer.list_topics(physical, timeout=5).topics[physical].partitions
        consumer.assign([TopicPartition(physical, p, 0) for p in parts])
        ends = {p: consumer.get_watermark_offsets(TopicPartition(physical, p))[1] for p in parts}
        seen, done = 0, {p for p, end in ends.items() if end == 0}
        while len(done) < len(parts):
            msg = consumer.poll(5)
            assert msg is not None, "topic read timed out"
            seen += msg.key() == doc_id.encode() and keep(msg.value() or b"")
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return seen
    finally:
        consumer.close()


async def test_ids_from_the_far_future_and_odd_bodies_are_400s(api: Api) -> None:
    far = await api.call("GET", "/docs/ffffffff-ffff-7fff-bfff-ffffffffffff/meta")
    assert far.status == 400 and "out of range" in far.body["error"]
    odd = await api.call(
        "POST",
        "/docs/request-upload",
        data=b'{"a": 1}',
        headers={"Content-Type": "application/json; charset=nope"},
    )
    assert odd.status == 400
    deep = await api.call("POST", "/docs/request-upload", data=b"[" * 20_000 + b"]" * 20_000)
    assert deep.status == 400
