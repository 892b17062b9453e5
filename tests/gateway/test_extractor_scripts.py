"""Extractor scripts on the real pipeline: hot swap, refusal, rollback, re-extraction."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.gateway.client import Api, Reply
from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration

# The default script plus a marker, so other tests on the shared pipeline see the same facts.
MARKED = """
from streams.extractors.default import extract as default_extract


def extract(path, info):
    meta = default_extract(path, info)
    meta["marked_by"] = "{tag}"
    return meta
"""
SWAP_WITHIN_S = 10


async def publish(api: Api, tag: str, activate: bool = True) -> Reply:
    query = "?activate=true" if activate else ""
    source = MARKED.format(tag=tag).encode()
    return await api.call("POST", f"/admin/extractor/scripts{query}", data=source)


async def active_version(api: Api) -> str:
    listing = (await api.call("GET", "/admin/extractor/scripts")).body
    return str(next(r["version"] for r in listing if r["active"]))


async def meta_of(api: Api, doc_id: str) -> dict[str, Any]:
    return dict((await api.call("GET", f"/docs/{doc_id}/meta")).body)


async def upload_text(api: Api, label: str) -> str:
    data = f"{label} {uuid.uuid4().hex}\nsecond line\n".encode()
    return str((await api.upload(f"{label}.txt", data))["id"])


@pytest.fixture
async def back_to_default(api: Api) -> AsyncIterator[None]:
    yield
    reply = await api.call("POST", "/admin/extractor/activate", json={"version": "default-1"})
    assert reply.status == 200, reply.body


async def test_a_new_version_takes_over_while_documents_flow(
    api: Api, back_to_default: None
) -> None:
    old, tag = await active_version(api), uuid.uuid4().hex[:8]
    sent: list[tuple[str, float]] = []
    stop = asyncio.Event()

    async def flow() -> None:
        while not stop.is_set():
            sent.append((await upload_text(api, f"flow-{len(sent)}"), time.monotonic()))
            await asyncio.sleep(0.2)

    flowing = asyncio.create_task(flow())
    await asyncio.sleep(2)
    reply = await publish(api, tag)
    assert reply.status == 201 and reply.body["active"], reply.body
    new, activated = reply.body["version"], time.monotonic()
    await asyncio.sleep(SWAP_WITHIN_S + 2)
    stop.set()
    await flowing
    versions = []
    for doc_id, at in sent:
        assert (await api.wait_done(doc_id))["status"] == "done"  # none lost
        meta = await meta_of(api, doc_id)
        versions.append(meta["script_version"])
        assert meta["script_version"] in (old, new) and meta["meta"]["text_lines"] == 2
        assert (meta["meta"].get("marked_by") == tag) == (meta["script_version"] == new)
        if at > activated + SWAP_WITHIN_S:
            assert meta["script_version"] == new, f"{doc_id} still on {old}"
    assert versions.count(old) >= 3 and versions.count(new) >= 3, versions


async def test_a_bad_script_is_refused_with_its_error_and_nothing_changes(
    api: Api, pipeline: Pipeline
) -> None:
    before = (await api.call("GET", "/admin/extractor/scripts")).body
    bad = b"def extract(path, info):\n    return {'pages': [1, 2]}\n"
    reply = await api.call("POST", "/admin/extractor/scripts?activate=true", data=bad)
    assert reply.status == 422 and "list is not str, int, float or bool" in reply.body["error"]
    assert (await api.call("GET", "/admin/extractor/scripts")).body == before
    tenant_key = pipeline.add_tenant(f"plain-{uuid.uuid4().hex[:6]}")
    forbidden = await api.call("POST", "/admin/extractor/rollback", key=tenant_key)
    assert forbidden.status == 403
    assert (await api.call("GET", "/admin/extractor/scripts", key="")).status == 401


async def test_rollback_brings_the_previous_version_back(api: Api, back_to_default: None) -> None:
    first = (await publish(api, "first-" + uuid.uuid4().hex[:6])).body
    second = (await publish(api, "second-" + uuid.uuid4().hex[:6])).body
    assert await active_version(api) == second["version"]
    back = await api.call("POST", "/admin/extractor/rollback")
    assert back.status == 200 and back.body["version"] == first["version"]
    assert back.body["previous_version"] == second["version"]
    deadline = time.monotonic() + SWAP_WITHIN_S
    while True:  # the worker follows within seconds
        doc_id = await upload_text(api, "after-rollback")
        await api.wait_done(doc_id)
        if (await meta_of(api, doc_id))["script_version"] == first["version"]:
            break
        assert time.monotonic() < deadline, "rollback not picked up in time"


async def test_reextraction_updates_metadata_without_scanning_again(
    api: Api, pipeline: Pipeline
) -> None:
    tenant = f"re-{uuid.uuid4().hex[:6]}"
    tenant_api = Api(api.session, api.base, pipeline.add_tenant(tenant))
    doc_id = await upload_text(tenant_api, "re-extract-me")
    scanned = await tenant_api.wait_done(doc_id)
    tag = "re-" + uuid.uuid4().hex[:6]
    version = (await publish(api, tag, activate=False)).body["version"]
    command = [sys.executable, "-m", "ops.cli", "extractor", "--json", "reextract"]
    command += ["--since", "1h", "--version", version, "--tenant", tenant]
    done = subprocess.run(command, env=pipeline.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["requested"] == 1
    meta = await _wait_for_version(tenant_api, doc_id, version)
    assert meta["meta"]["marked_by"] == tag and meta["status"] == "done"
    again = (await tenant_api.call("GET", f"/docs/{doc_id}/scan-results")).body
    assert again["scan_results"] == scanned["scan_results"]  # no new scan
    assert await active_version(api) != version  # re-extraction does not activate


async def _wait_for_version(api: Api, doc_id: str, version: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        meta = await meta_of(api, doc_id)
        if meta["script_version"] == version:
            return meta
        await asyncio.sleep(0.3)
    raise AssertionError(f"{doc_id} not re-extracted with {version}: {meta}")
