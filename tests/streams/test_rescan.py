"""Retro-scan end to end on a stack of its own: the hash list learns a file, its verdict flips.

A hash-reputation scanner reads a list in the test's directory; sim-a stands for every other
scanner.  C is scanned first and left to age out of the (shortened) window; A and B are
scanned inside it, D has A's bytes (its verdicts are reused from A).  Then the list gains
A's and C's hashes: A turns malicious (and D with it, by copy) within a minute, while B (other
bytes), C (outside the window) and sim-a (signatures unchanged) are left untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ops.kafka import topic
from ops.replay import read_all
from ops.settings import Settings
from schemas import codec, topics
from tests.gateway.client import Api, parse_sse
from tests.gateway.conftest import conforms
from tests.plugins.pipeline import Pipeline, running_pipeline

pytestmark = pytest.mark.integration
WINDOW_S = 25.0
HASH = "hash-reputation"


@pytest.fixture(scope="module")
def stack(
    settings: Settings, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Pipeline, Path]]:
    here = tmp_path_factory.mktemp("rescan")
    known_bad = here / "known_bad.txt"
    known_bad.write_text("# the test's hash list\n")
    base = settings.with_overrides(
        rescan_window_days=WINDOW_S / 86400, rescan_check_s=0.5, rescan_rate_per_s=20.0
    )
    scanners = [f"{HASH}?list_path={known_bad}", "sim-a:simulated?latency_ms=50"]
    with running_pipeline(base, here, "rescan", scanners) as pipe:
        yield pipe, known_bad


@pytest.fixture
async def api(stack: tuple[Pipeline, Path]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, stack[0].url, stack[0].settings.dev_api_key)


def _by_scanner(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["scanner"]: r for r in results["scan_results"]}


async def _verdict_of(api: Api, doc_id: str, scanner: str) -> dict[str, Any]:
    reply = await api.call("GET", f"/docs/{doc_id}/scan-results")
    assert reply.status == 200, reply.body
    return _by_scanner(reply.body)[scanner]


async def _wait_for(api: Api, doc_id: str, verdict: str, timeout_s: float = 60) -> float:
    """Seconds until ``doc_id``'s hash-reputation verdict is ``verdict`` in scan-results."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if (await _verdict_of(api, doc_id, HASH))["verdict"] == verdict:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{doc_id} not {verdict} after {timeout_s}s")


def _metrics(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return str(resp.read().decode())


def _sample(page: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in page.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _records(settings: Settings, name: str) -> list[dict[str, Any]]:
    return [codec.decode(m.value() or b"") for m in read_all(settings, topic(settings, name))]


async def test_a_changed_hash_list_flips_the_verdict_of_what_it_now_lists(
    stack: tuple[Pipeline, Path], api: Api
) -> None:
    pipe, known_bad = stack
    settings = pipe.settings
    x, y, z = (f"{tag} {uuid.uuid4().hex}".encode() for tag in ("x", "y", "z"))
    old = await api.upload("old.txt", z)
    assert (await api.wait_done(old["id"]))["summary"]["flagged"] == 0
    aged_at = time.monotonic() + WINDOW_S + 2  # then old's verdicts are out of the window
    await asyncio.sleep(max(0.0, aged_at - time.monotonic() - 8))
    a, b = await api.upload("a.txt", x), await api.upload("b.txt", y)
    first_a = await api.wait_done(a["id"])
    a_done = time.monotonic()
    assert _by_scanner(first_a)[HASH]["verdict"] == "clean"
    await api.wait_done(b["id"])
    d = await api.upload("d.txt", x)  # A's bytes: every verdict reused from A
    assert all(r["reused"] for r in (await api.wait_done(d["id"]))["scan_results"])
    before = parse_sse(await api.sse_raw(a["urls"]["events"]))
    assert before[-1].event == "done"
    await asyncio.sleep(max(0.0, aged_at - time.monotonic()))

    assert time.monotonic() - a_done < WINDOW_S - 5, "the machine is too slow for the window"
    listed = "".join(f"{hashlib.sha256(data).hexdigest()} Test.Listed\n" for data in (x, z))
    changed_at, changed_wall = time.monotonic(), time.time()
    with known_bad.open("a") as out:
        out.write(listed)
    a_took = await _wait_for(api, a["id"], "malicious")
    d_took = (time.monotonic() - changed_at) + await _wait_for(api, d["id"], "malicious")
    print(f"\nlist changed at {changed_wall:.3f} -> A malicious in scan-results {a_took:.2f}s,")
    print(f"D (same bytes, by copy) {d_took:.2f}s; logs in {pipe.logs}")
    assert a_took < 60

    # A: the new verdict is a rescan's, the clean one is its earlier verdict.
    results = (await api.call("GET", f"/docs/{a['id']}/scan-results")).body
    conforms(results, "ScanResults")
    mine = _by_scanner(results)[HASH]
    assert (mine["rescan"], mine["previous_verdict"]) == (True, "clean")
    assert [e["verdict"] for e in mine["earlier"]] == ["clean"]
    assert mine["signatures_version"] != mine["earlier"][0]["signatures_version"]
    assert _by_scanner(results)["sim-a"]["rescan"] is False
    copy = await _verdict_of(api, d["id"], HASH)
    assert (copy["rescan"], copy["reused"], copy["previous_verdict"]) == (True, True, "clean")
    # Untouched: other bytes, and bytes the list now has but scanned outside the window.
    for doc in (b, old):
        untouched = await _verdict_of(api, doc["id"], HASH)
        assert (untouched["verdict"], untouched["rescan"]) == ("clean", False)
        assert "earlier" not in untouched

    # A stream that resumes after its done gets the rescan's verdict, marked as such.
    resumed = parse_sse(await api.sse_raw(a["urls"]["events"], last_event_id=before[-1].id))
    verdicts = [e.data for e in resumed if e.event == "verdict"]
    assert [(v["scanner"], v["verdict"], v["rescan"]) for v in verdicts] == [
        (HASH, "malicious", True)
    ]

    # Nothing else was asked: one request per content in the window, for hash-reputation.
    requests = _records(settings, topics.SCAN_RESCANS)
    assert {r["scanner"] for r in requests} == {HASH}
    assert len(requests) == 2
    assert {r["sha256"] for r in requests} == {hashlib.sha256(v).hexdigest() for v in (x, y)}
    rescans = [v for v in _records(settings, topics.SCAN_VERDICTS) if v["rescan"] is not None]
    assert sorted(v["doc_id"] for v in rescans) == sorted([a["id"], d["id"]])

    # The metric and the log line an alert catches; the scanner skipped B without scanning.
    token = settings.metrics_token
    worker = _metrics(f"http://{settings.bind.host}:{settings.bind.worker_port}/metrics", token)
    changes = "intellidox_rescan_verdict_changes_total"
    assert _sample(worker, changes, scanner=HASH, to="malicious") == 2
    host = _metrics(f"http://{settings.bind.host}:{settings.bind.scanner_port_base}/metrics", token)
    outcomes = "intellidox_scanner_rescans_total"
    assert _sample(host, outcomes, scanner=HASH, outcome="changed") == 1
    assert _sample(host, outcomes, scanner=HASH, outcome="unaffected") == 1
    log = (pipe.logs / "worker.log").read_text()
    assert log.count('"alert": "rescan_flagged"') == 2

    # Reuse: A's bytes get the rescan's verdict; B's only a stale one, marked as such.
    e, f = await api.upload("e.txt", x), await api.upload("f.txt", y)
    reused_e = _by_scanner(await api.wait_done(e["id"]))[HASH]
    reused_f = _by_scanner(await api.wait_done(f["id"]))[HASH]
    assert (reused_e["verdict"], reused_e["reused"], reused_e["signatures_stale"]) == (
        "malicious",
        True,
        False,
    )
    assert (reused_f["verdict"], reused_f["reused"], reused_f["signatures_stale"]) == (
        "clean",
        True,
        True,
    )


async def test_an_operator_rescans_one_content_with_one_scanner(
    stack: tuple[Pipeline, Path], api: Api
) -> None:
    pipe, _ = stack
    data = f"manual {uuid.uuid4().hex}".encode()
    doc = await api.upload("g.txt", data)
    await api.wait_done(doc["id"])
    sha = hashlib.sha256(data).hexdigest()
    command = [sys.executable, "-m", "ops.cli", "rescan", "--scanner", "sim-a"]
    command += ["--since", "10m", "--sha256", sha, "--wait"]
    done = await asyncio.to_thread(
        subprocess.run, command, env=pipe.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "done: 1 selected, 1 requested" in done.stdout
    asked = [r for r in _records(pipe.settings, topics.SCAN_RESCANS) if r["reason"] == "manual"]
    assert [(r["scanner"], r["doc_id"], r["signatures_version"]) for r in asked] == [
        ("sim-a", doc["id"], None)
    ]
    host = f"http://{pipe.settings.bind.host}:{pipe.settings.bind.scanner_port_base}/metrics"
    outcomes = "intellidox_scanner_rescans_total"
    deadline = time.monotonic() + 30
    while _sample(_metrics(host, pipe.settings.metrics_token), outcomes, scanner="sim-a") < 1:
        assert time.monotonic() < deadline, "sim-a never took the rescan"
        await asyncio.sleep(0.2)
    page = _metrics(host, pipe.settings.metrics_token)
    assert _sample(page, outcomes, scanner="sim-a", outcome="unchanged") == 1
    assert (await _verdict_of(api, doc["id"], "sim-a"))["rescan"] is False  # still clean
