"""The Schema Registry API: Confluent's own client and deserializer, unchanged, against it.

The unit tests serve only the registry's routes in-process (the standard client is synchronous,
so it runs in a thread); the integration test decodes real verdicts of the test pipeline.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import fastavro
import pytest
from aiohttp import web
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from gateway.edge import edge
from gateway.registry import CONTENT_TYPE, registry_routes
from gateway.state import APP
from ops.kafka import ANALYST, as_role, consumer_config, topic
from ops.settings import Settings
from schemas import codec, subjects, topics
from tests.gateway.client import Api
from tests.plugins.pipeline import Pipeline, free_port

SCHEMAS = Path(codec.__file__).parent
PREFIX = "t1."
CONFIRMED = f"{PREFIX}docs.confirmed-value"
CONFIRMED_V1 = {
    "doc_id": "0190a7e2-0000-7000-8000-000000000001",
    "tenant": "acme",
    "file_name": "old.pdf",
    "file_size": 12,
    "content_type": None,
    "bucket": "intellidox-2024",
    "key": "0190a7e2-0000-7000-8000-000000000001",
    "created_at": datetime(2024, 7, 1, tzinfo=UTC),
    "uploaded_at": datetime(2024, 7, 1, 0, 0, 5, tzinfo=UTC),
}


@pytest.fixture
async def registry() -> AsyncIterator[str]:
    """The registry's routes alone, on a free port, for topics under ``PREFIX``."""
    app = web.Application(middlewares=[edge])
    app[APP] = SimpleNamespace(settings=Settings().with_overrides(topic_prefix=PREFIX))
    app.add_routes(registry_routes)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/registry"
    await runner.cleanup()


async def _get(url: str, method: str = "GET", **kwargs: Any) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as resp:
        return resp.status, resp.content_type, await resp.json(content_type=None)


def _schema_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"schema": json.dumps(schema)}


def _v1_record() -> bytes:
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, 4))  # magic byte, the id of docs_confirmed v1
    fastavro.schemaless_writer(out, codec.parsed_by_id(4), CONFIRMED_V1)
    return out.getvalue()


async def test_subjects_are_every_topic_under_the_prefix(registry: str) -> None:
    status, content_type, body = await _get(f"{registry}/subjects")
    assert (status, content_type) == (200, CONTENT_TYPE)
    assert body == [f"{PREFIX}{name}-value" for name in subjects.TOPIC_FAMILIES]
    assert f"{PREFIX}scan.verdicts-value" in body
    assert (await _get(f"{registry}/subjects?subjectPrefix={PREFIX}docs."))[2] == [
        s for s in body if s.startswith(f"{PREFIX}docs.")
    ]


async def test_versions_are_the_familys_ids_in_order(registry: str) -> None:
    assert (await _get(f"{registry}/subjects/{CONFIRMED}/versions"))[2] == [1, 2]
    verdict_versions = list(range(1, len(codec.versions("scan_verdict")) + 1))
    assert (await _get(f"{registry}/subjects/{PREFIX}scan.verdicts-value/versions"))[
        2
    ] == verdict_versions
    first = (await _get(f"{registry}/subjects/{CONFIRMED}/versions/1"))[2]
    assert first["id"] == 4 and first["version"] == 1 and first["subject"] == CONFIRMED
    assert json.loads(first["schema"])["name"] == "DocsConfirmed"
    latest = (await _get(f"{registry}/subjects/{CONFIRMED}/versions/latest"))[2]
    assert (latest["id"], latest["version"]) == (10, 2)
    assert (await _get(f"{registry}/subjects/{CONFIRMED}/versions/-1"))[2] == latest
    assert (await _get(f"{registry}/schemas/ids/10"))[2] == {"schema": latest["schema"]}
    assert (await _get(f"{registry}/schemas/ids/10/versions"))[2] == [
        {"subject": CONFIRMED, "version": 2}
    ]
    assert (await _get(f"{registry}/schemas/ids/4/subjects"))[2] == [CONFIRMED]


async def test_the_standard_client_lists_what_the_codec_declares(registry: str) -> None:
    def calls() -> None:
        with SchemaRegistryClient({"url": registry}) as client:
            _check_listings(client)

    await asyncio.to_thread(calls)


def _check_listings(client: SchemaRegistryClient) -> None:
    assert client.get_versions(CONFIRMED) == [1, 2]
    for sid, stem in codec.SCHEMA_IDS.items():
        schema = json.loads(client.get_schema(sid).schema_str)
        assert schema == json.loads(SCHEMAS.joinpath(f"{stem}.avsc").read_text())
    assert client.get_latest_version(CONFIRMED).schema_id == codec.schema_id("docs_confirmed")
    assert client.get_compatibility() == "BACKWARD"
    with pytest.raises(SchemaRegistryError) as missing:
        client.get_version(CONFIRMED, 3)
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40402)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/subjects/nope-value/versions", 404, 40401),
        (f"/subjects/{PREFIX}nope-value/versions/1", 404, 40401),
        ("/subjects/docs.confirmed-value/versions", 404, 40401),  # no prefix: another stack's
        (f"/subjects/{CONFIRMED}/versions/3", 404, 40402),
        (f"/subjects/{CONFIRMED}/versions/0", 422, 42202),
        (f"/subjects/{CONFIRMED}/versions/abc", 422, 42202),
        (f"/subjects/{CONFIRMED}/versions/99999999999", 422, 42202),
        ("/schemas/ids/99", 404, 40403),
        ("/schemas/ids/0", 404, 40403),
        ("/schemas/ids/x1", 404, 40403),
        ("/config/nope-value", 404, 40401),
        (f"/subjects/{CONFIRMED}/versions/%D9%A1", 422, 42202),  # an Arabic one: not ASCII
        (f"/subjects/{CONFIRMED}/versions/+1", 422, 42202),
        (f"/subjects/{CONFIRMED}/versions/{'9' * 5000}", 422, 42202),
        (f"/subjects/{'x' * 5000}/versions", 404, 40401),
        ("/schemas/ids/%D9%A1", 404, 40403),
        (f"/schemas/ids/{'9' * 5000}", 404, 40403),
    ],
)
async def test_errors_have_the_registry_shape(
    registry: str, path: str, status: int, code: int
) -> None:
    got_status, content_type, body = await _get(registry + path)
    assert (got_status, content_type) == (status, CONTENT_TYPE)
    assert body["error_code"] == code and body["message"]


async def test_nothing_can_be_registered(registry: str) -> None:
    body = {"schema": (await _get(f"{registry}/schemas/ids/10"))[2]["schema"]}
    status, _, reply = await _get(f"{registry}/subjects/{CONFIRMED}/versions", "POST", json=body)
    assert (status, reply["error_code"]) == (422, 42205)
    assert (await _get(f"{registry}/mode"))[2] == {"mode": "READONLY"}


def _with_field(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {**base, "fields": [*base["fields"], extra]}


async def test_compatibility_against_a_version(registry: str) -> None:
    v1 = json.loads((await _get(f"{registry}/subjects/{CONFIRMED}/versions/1"))[2]["schema"])
    url = f"{registry}/compatibility/subjects/{CONFIRMED}/versions"
    optional = _with_field(v1, {"name": "note", "type": ["null", "string"], "default": None})
    required = _with_field(v1, {"name": "note", "type": "string"})
    retyped = {**v1, "fields": [{"name": "doc_id", "type": "long"}, *v1["fields"][1:]]}
    assert (await _get(f"{url}/1", "POST", json=_schema_body(optional)))[2] == {
        "is_compatible": True
    }
    assert (await _get(f"{url}/latest", "POST", json=_schema_body(v1)))[2] == {
        "is_compatible": True  # v1 reads v2 records: it skips version_id
    }
    status, content_type, answer = await _get(
        f"{url}/1?verbose=true", "POST", json=_schema_body(required)
    )
    assert (status, content_type, answer["is_compatible"]) == (200, CONTENT_TYPE, False)
    assert answer["messages"] == ["DocsConfirmed.note: not written and has no default"]

    def client_says(schema: dict[str, Any]) -> bool:
        with SchemaRegistryClient({"url": registry}) as client:
            return bool(client.test_compatibility(CONFIRMED, Schema(json.dumps(schema), "AVRO"), 1))

    assert await asyncio.to_thread(client_says, optional)
    assert not await asyncio.to_thread(client_says, retyped)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{", 400, 400),
        (b"[" * 5000 + b"]" * 5000, 400, 400),
        (b'{"schema": 1}', 422, 42201),
        (b'{"schema": "{"}', 422, 42201),
        (b'{"schema": "{\\"type\\": \\"nope\\"}"}', 422, 42201),
        (b'{"schema": "\\"string\\"", "schemaType": "PROTOBUF"}', 422, 42201),
        (b'{"schema": "\\"string\\"", "references": [{"name": "x"}]}', 422, 42201),
        (json.dumps({"schema": "[" * 3000 + "]" * 3000}).encode(), 422, 42201),
        (json.dumps({"schema": '{"__fastavro_parsed": true}'}).encode(), 422, 42201),
    ],
)
async def test_bad_posted_schemas_are_registry_errors(
    registry: str, body: bytes, status: int, code: int
) -> None:
    url = f"{registry}/compatibility/subjects/{CONFIRMED}/versions/1"
    for target in (url, f"{registry}/subjects/{CONFIRMED}"):
        got = await _get(target, "POST", data=body, headers={"Content-Type": CONTENT_TYPE})
        assert (got[0], got[2]["error_code"]) == (status, code), got


async def test_lookup_finds_the_version_of_a_schema(registry: str) -> None:
    first = (await _get(f"{registry}/subjects/{CONFIRMED}/versions/1"))[2]
    spaced = {"schema": json.dumps(json.loads(first["schema"]), indent=2)}
    assert (await _get(f"{registry}/subjects/{CONFIRMED}", "POST", json=spaced))[2] == first
    other = {"schema": json.dumps({"type": "record", "name": "X", "fields": []})}
    got = await _get(f"{registry}/subjects/{CONFIRMED}", "POST", json=other)
    assert (got[0], got[2]["error_code"]) == (404, 40403)


async def test_an_old_version_record_decodes_through_the_registry(registry: str) -> None:
    """docs_confirmed v1 (id 4): as written by default, into v2 with ``use.latest.version``."""
    data = _v1_record()
    context = SerializationContext(f"{PREFIX}{topics.DOCS_CONFIRMED}", MessageField.VALUE)

    def decode() -> tuple[Any, Any]:
        with SchemaRegistryClient({"url": registry}) as client:
            as_written = AvroDeserializer(client)(data, context)
            as_newest = AvroDeserializer(client, conf={"use.latest.version": True})(data, context)
            return as_written, as_newest

    as_written, as_newest = await asyncio.to_thread(decode)
    assert as_written == CONFIRMED_V1
    assert as_newest == {**CONFIRMED_V1, "version_id": None} == codec.decode(data)


@pytest.mark.integration
async def test_analysts_decode_real_verdicts_with_the_standard_clients(
    api: Api, pipeline: Pipeline
) -> None:
    ticket = await api.upload("for-analysts.txt", b"analyst " + uuid.uuid4().bytes)
    results = await api.wait_done(ticket["id"])
    expected = {r["scanner"]: r["verdict"] for r in results["scan_results"]}
    assert len(expected) == 3
    got = await asyncio.to_thread(_read_verdicts, pipeline, ticket["id"], len(expected))
    assert {v["scanner"]: v["verdict"] for v in got} == expected
    assert all(v["doc_id"] == ticket["id"] and v["tenant"] for v in got)


def _read_verdicts(pipeline: Pipeline, doc_id: str, count: int) -> list[dict[str, Any]]:
    """As an analyst would: subscribe, deserialize with the registry, keep this document's."""
    analyst = as_role(pipeline.settings, ANALYST)  # read-only; its groups are analyst-*
    name = topic(analyst, topics.SCAN_VERDICTS)
    consumer = Consumer(consumer_config(analyst, f"analyst-{uuid.uuid4().hex}"))
    consumer.subscribe([name])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    try:
        with SchemaRegistryClient({"url": f"{pipeline.url}/registry"}) as client:
            deserialize = AvroDeserializer(client)
            while len(found) < count and time.monotonic() < deadline:
                msg = consumer.poll(1)
                if msg is None or msg.error() or msg.key() != doc_id.encode():
                    continue
                record = deserialize(msg.value(), SerializationContext(name, MessageField.VALUE))
                assert record == codec.decode(msg.value() or b"")
                found.append(record)
    finally:
        consumer.close()
    return found
