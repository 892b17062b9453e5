"""Every process's /metrics on the real pipeline: the token, route templates, streams open,
and what the worker's probe reports about lag, dead letters, documents and scanners."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

import aiohttp
import pytest

from ops.metrics import families, scrape, total
from tests.gateway.client import Api
from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration


def urls(pipeline: Pipeline) -> dict[str, str]:
    s = pipeline.settings
    ports = {
        "gateway": s.bind.gateway_port,
        "worker": s.bind.worker_port,
        "scanners": s.bind.scanner_port_base,
    }
    return {name: f"http://{s.bind.host}:{port}/metrics" for name, port in ports.items()}


def status_without_token(url: str, header: str | None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": header} if header else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        refused.close()
        return refused.code


def test_every_process_wants_the_metrics_token(pipeline: Pipeline) -> None:
    for name, url in urls(pipeline).items():
        assert status_without_token(url, None) == 401, name
        assert status_without_token(url, "Bearer not-the-token") == 401, name
        text = scrape(url, pipeline.settings.metrics_token)
        assert "process_cpu_seconds_total" in text, name  # the default registry is served


async def wait_for(what: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < deadline, "not seen in time"
        await asyncio.sleep(0.3)


async def test_requests_are_counted_by_route_template_not_raw_path(
    api: Api, pipeline: Pipeline
) -> None:
    doc_id = str(uuid.uuid4())  # not a version-7 id: 400
    assert (await api.call("GET", f"/docs/{doc_id}/meta")).status == 400
    assert (await api.call("GET", f"/no/such/{doc_id}")).status == 404
    text = scrape(urls(pipeline)["gateway"], pipeline.settings.metrics_token)
    assert doc_id not in text
    route = {"method": "GET", "route": "/docs/{doc_id}/meta", "status": "400"}
    assert total(text, "intellidox_http_requests_total", **route) >= 1
    assert total(text, "intellidox_http_requests_total", route="unmatched", status="404") >= 1
    timed = {"method": "GET", "route": "/docs/{doc_id}/meta"}
    assert total(text, "intellidox_http_request_duration_seconds_count", **timed) >= 1


async def test_an_event_stream_counts_as_open_until_it_ends(api: Api, pipeline: Pipeline) -> None:
    url, token = urls(pipeline)["gateway"], pipeline.settings.metrics_token

    def open_streams() -> float:
        return total(scrape(url, token), "intellidox_sse_streams_open")

    before = open_streams()
    ticket = (await api.request_upload("never-uploaded.txt", b"x")).body  # stays 'requested'
    headers = {"Authorization": f"Bearer {pipeline.settings.dev_api_key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{pipeline.url}/docs/{ticket['id']}/events", headers=headers) as stream,
    ):
        assert stream.status == 200
        await stream.content.readline()  # the stream has started
        await wait_for(lambda: open_streams() == before + 1)
    await wait_for(lambda: open_streams() == before)


async def test_the_worker_reports_lag_dead_letters_documents_and_scanners(
    api: Api, pipeline: Pipeline
) -> None:
    ticket = await api.upload("lag.txt", b"watch me " + uuid.uuid4().hex.encode())
    await api.wait_done(ticket["id"])
    url, token = urls(pipeline)["worker"], pipeline.settings.metrics_token
    scanners = {"clamav", "sim-a", "sim-b"}

    def probed() -> bool:
        lags = families(scrape(url, token))["intellidox_consumer_group_lag"]
        return {labels["group"] for _, labels, _ in lags} >= scanners | {"intellidox-worker"}

    await wait_for(probed)  # the probe runs every 2 s on the test stack
    found = families(scrape(url, token))
    lags = found["intellidox_consumer_group_lag"]
    partitions = pipeline.settings.kafka.partitions
    for group in scanners:  # one series per scan.requests partition, the prefix left out
        mine = [labels for _, labels, _ in lags if labels["group"] == group]
        assert {labels["topic"] for labels in mine} == {"scan.requests"}
        assert len(mine) == partitions
    dlq = {labels["topic"]: value for _, labels, value in found["intellidox_dlq_pending"]}
    assert set(dlq) >= {"scan.requests.dlq", "docs.confirmed.dlq"}
    heartbeats = found["intellidox_scanner_heartbeat_age_seconds"]
    ages = {labels["scanner"]: age for _, labels, age in heartbeats}
    assert set(ages) == scanners and max(ages.values()) < 10
    info = {labels["scanner"]: labels for _, labels, _ in found["intellidox_scanner_engine_info"]}
    assert info["clamav"]["vendor"] and info["clamav"]["signatures_version"]
    assert found["intellidox_documents_allowed_seconds"][0][2] > 0
    assert found["intellidox_extraction_duration_seconds"]
    scanned = scrape(urls(pipeline)["scanners"], token)
    assert total(scanned, "intellidox_verdicts_total", scanner="sim-a", verdict="clean") >= 1
    assert total(scanned, "intellidox_scan_duration_seconds_count", scanner="sim-b") >= 1
    outbox = families(scrape(urls(pipeline)["gateway"], token))
    assert outbox["intellidox_outbox_oldest_age_seconds"][0][2] < 30
