"""Scanners that do not accept a file type are answered ``unsupported`` at fan-out, end to end.

A stack of its own: pdf-active (accepts pdf) and sim-a (every type).  A text file is done
with pdf-active ``unsupported`` although pdf-active was never asked (its scan request does not
list it, and the scanner never started on it), a PDF is still scanned by both (a PDF behind
junk, detected as another type, too: its bytes also read as pdf), and the same
text again reuses sim-a's verdict while pdf-active's ``unsupported`` is decided again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from ops.metrics import scrape, total
from ops.settings import Settings
from ops.trace import trace
from schemas import topics
from schemas.scans import ScanRequest
from tests.gateway.client import Api
from tests.gateway.conftest import make_pdf
from tests.plugins.pipeline import Pipeline, running_pipeline
from tests.scanners.kafka_io import read

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(
    settings: Settings, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    here = tmp_path_factory.mktemp("unsupported")
    with running_pipeline(
        settings, here, "unsup", ["pdf-active", "sim-a:simulated?latency_ms=20"]
    ) as pipe:
        yield pipe


@pytest.fixture
async def api(stack: Pipeline) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, stack.url, stack.settings.dev_api_key)


def _by_scanner(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["scanner"]: r for r in results["scan_results"]}


def _request_of(stack: Pipeline, doc_id: str) -> ScanRequest:
    found = [
        ScanRequest.decode(m.value())
        for m in read(stack.settings, topics.SCAN_REQUESTS)
        if m.key() == doc_id.encode()
    ]
    assert len(found) == 1, found
    return found[0]


def _scanned_by_pdf_active(stack: Pipeline, doc_id: str) -> bool:
    log = (stack.logs / "scanners.log").read_text(errors="replace")
    return f"pdf-active: scanning {doc_id}" in log


async def test_a_text_file_is_done_with_pdf_active_unsupported_and_never_sent_to_it(
    stack: Pipeline, api: Api
) -> None:
    text = b"plain words " + uuid.uuid4().hex.encode()  # unique bytes: no reuse
    ticket = await api.upload("notes.txt", text)
    results = await api.wait_done(ticket["id"])
    verdicts = _by_scanner(results)
    assert verdicts["pdf-active"]["verdict"] == "unsupported"
    assert verdicts["pdf-active"]["result"] == "text is not a type pdf-active accepts (pdf)"
    assert not verdicts["pdf-active"]["reused"]
    assert verdicts["sim-a"]["verdict"] == "clean"
    assert results["summary"] == {"flagged": 0, "scanned": 2, "expected": 2}
    request = _request_of(stack, ticket["id"])
    assert [s.name for s in request.scanners] == ["sim-a"]
    assert request.unsupported == ("pdf-active",) and request.file_type == "text"
    assert not _scanned_by_pdf_active(stack, ticket["id"])
    stages = {e.summary.split(":")[0]: e.stage for e in trace(stack.settings, ticket["id"])}
    assert stages["verdict pdf-active"] == "worker:fan-out"  # the orchestrator's answer
    assert stages["verdict sim-a"] == "scanner:sim-a"
    worker = f"http://{stack.settings.bind.host}:{stack.settings.bind.worker_port}/metrics"
    counted = scrape(worker, stack.settings.metrics_token)
    assert total(counted, "intellidox_verdicts_unsupported_total", scanner="pdf-active") >= 1


async def test_a_pdf_is_still_scanned_by_pdf_active(stack: Pipeline, api: Api) -> None:
    ticket = await api.upload("report.pdf", make_pdf(pages=1) + uuid.uuid4().hex.encode())
    verdicts = _by_scanner(await api.wait_done(ticket["id"]))
    assert verdicts["pdf-active"]["verdict"] == "clean" and verdicts["pdf-active"]["engine_version"]
    request = _request_of(stack, ticket["id"])
    assert {s.name for s in request.scanners} == {"pdf-active", "sim-a"}
    assert request.unsupported == ()
    assert _scanned_by_pdf_active(stack, ticket["id"])


async def test_a_pdf_behind_junk_is_scanned_by_pdf_active(stack: Pipeline, api: Api) -> None:
    """Readers take %PDF- anywhere in the first KiB: the bytes must not choose to skip it."""
    junk = b"junk before the header " + uuid.uuid4().hex.encode() + b"\n"
    ticket = await api.upload("report.pdf", junk + make_pdf(pages=1))
    verdicts = _by_scanner(await api.wait_done(ticket["id"]))
    assert verdicts["pdf-active"]["verdict"] == "clean" and verdicts["pdf-active"]["engine_version"]
    request = _request_of(stack, ticket["id"])
    assert request.file_type != "pdf"  # the primary type is what the first bytes say
    assert {s.name for s in request.scanners} == {"pdf-active", "sim-a"}
    assert request.unsupported == ()
    assert _scanned_by_pdf_active(stack, ticket["id"])
    summaries = [e.summary for e in trace(stack.settings, ticket["id"])]
    assert any(s.startswith("metadata: ") and "(also pdf)" in s for s in summaries), summaries


async def test_the_same_text_again_reuses_the_scans_and_decides_unsupported_again(
    api: Api,
) -> None:
    text = b"twice " + uuid.uuid4().hex.encode()
    first = _by_scanner(await api.wait_done((await api.upload("one.txt", text))["id"]))
    second = _by_scanner(await api.wait_done((await api.upload("two.txt", text))["id"]))
    assert second["sim-a"]["reused"] and second["sim-a"]["end_at"] == first["sim-a"]["end_at"]
    assert second["pdf-active"]["verdict"] == "unsupported"
    assert not second["pdf-active"]["reused"]
