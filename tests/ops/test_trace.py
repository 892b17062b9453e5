"""``intellidox trace``: a document's history from the topics, on a real stack."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import pytest
from confluent_kafka import Producer

from ops.kafka import producer_config, topic
from ops.replay import partition_of
from ops.trace import DEAD_LETTER, trace
from schemas import topics
from tests.gateway.client import Api
from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration


def test_a_key_lands_on_the_partition_kafka_puts_it_on() -> None:
    # Kafka's own test vectors for its Java murmur2 (UtilsTest.testMurmur2), positive, mod n.
    for key, hashed in [(b"21", -973932308), (b"foobar", -790332482), (b"abc", 479470107)]:
        assert partition_of(key, 1000) == (hashed & 0x7FFFFFFF) % 1000
    assert {partition_of(str(uuid.uuid4()).encode(), 6) for _ in range(200)} == set(range(6))


async def test_trace_tells_the_whole_history_in_order_with_stages(
    api: Api, pipeline: Pipeline
) -> None:
    ticket = await api.upload("traced.txt", b"trace me " + uuid.uuid4().hex.encode())
    doc_id = ticket["id"]
    await api.wait_done(doc_id)
    producer = Producer(producer_config(pipeline.settings))  # the document also leaves poison
    producer.produce(
        topic(pipeline.settings, topics.SCAN_VERDICTS), key=doc_id.encode(), value=b"junk"
    )
    producer.flush(10)
    events = []
    for _ in range(40):  # until the materializer (or the tracker) has dead-lettered it
        events = await asyncio.to_thread(trace, pipeline.settings, doc_id)
        if any(e.kind == DEAD_LETTER for e in events):
            break
        await asyncio.sleep(0.25)

    kinds = [(e.kind, e.stage) for e in events]
    assert kinds[0] == ("docs_requested", "gateway")
    # 'uploaded' comes from the storage-events listener or the confirm, whichever is first.
    assert ("docs_confirmed", "gateway") in kinds and ("docs_status", "gateway") in kinds
    assert ("docs_metadata", "worker:extraction") in kinds
    assert ("scan_request", "worker:fan-out") in kinds
    verdicts = {e.stage for e in events if e.kind == "scan_verdict"}
    assert verdicts == {"scanner:clamav", "scanner:sim-a", "scanner:sim-b"}
    statuses = [e.summary for e in events if e.kind == "docs_status"]
    assert statuses[0] == "status uploaded" and statuses[-1] == "status done"
    assert [e.time_ms for e in events] == sorted(e.time_ms for e in events)
    metadata = next(e for e in events if e.kind == "docs_metadata")
    assert events.index(metadata) < next(
        i for i, e in enumerate(events) if e.kind == "scan_request"
    )
    dead = [e for e in events if e.kind == DEAD_LETTER]
    assert dead and dead[0].topic == topics.dlq(topics.SCAN_VERDICTS)
    assert "not a Confluent Avro message" in dead[0].summary
    facts = [e for e in events if e.kind != DEAD_LETTER]
    assert {e.partition for e in facts} == {partition_of(doc_id.encode(), 6)}
    assert all(e.time_ms > 0 and e.offset >= 0 for e in events)
    request = next(e for e in events if e.kind == "scan_request")
    assert "download_url" not in dict(request.fields)
    assert "X-Amz-Signature" not in json.dumps([e.as_json() for e in events])


def test_the_cli_prints_lines_and_json(pipeline: Pipeline) -> None:
    unknown = str(uuid.uuid4())

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ops.cli", "trace", *argv],
            env=pipeline.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    empty = cli(unknown)
    assert empty.returncode == 1 and f"no events for {unknown}" in empty.stdout
    assert cli("not-an-id").returncode != 0
    # A document of this stack: the first one any test traced has its request on the topic.
    done = asyncio.run(_any_document(pipeline))
    text, as_json = cli(done), cli(done, "--json")
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    assert "docs.requested[" in text.stdout and "upload requested: 'cli.txt'" in text.stdout
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert events[0]["kind"] == "docs_requested" and events[0]["stage"] == "gateway"
    assert {"time", "topic", "partition", "offset", "stage", "summary", "fields"} <= set(events[0])


async def _any_document(pipeline: Pipeline) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        api = Api(session, pipeline.url, pipeline.settings.dev_api_key)
        ticket = await api.upload("cli.txt", b"cli " + uuid.uuid4().hex.encode())
        await api.wait_done(ticket["id"])
        return str(ticket["id"])
