"""What was scanned is what is stored: bytes PUT after confirm change nothing anyone reads."""

from __future__ import annotations

import hashlib
import io
import os
import uuid

import pytest

from tests.gateway.client import Api
from tests.gateway.conftest import EICAR
from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration


async def _content(api: Api, doc_id: str, key: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {key or api.key}"}
    async with api.session.get(
        f"{api.base}/docs/{doc_id}/content", headers=headers, allow_redirects=False
    ) as resp:
        if resp.status != 302:
            return resp.status, await resp.read()
        location = resp.headers["Location"]
        assert resp.headers["Cache-Control"] == "no-store"
    async with api.session.get(location) as stored:
        assert stored.status == 200
        assert "attachment" in stored.headers.get("Content-Disposition", "")
        return 302, await stored.read()


async def test_a_put_after_done_changes_neither_content_nor_verdicts(api: Api) -> None:
    harmless = b"X" * (len(EICAR) - 32) + uuid.uuid4().hex.encode()  # same length as EICAR
    assert len(harmless) == len(EICAR)
    ticket = await api.upload("harmless.com", harmless)
    results = await api.wait_done(ticket["id"])
    assert all(r["verdict"] == "clean" for r in results["scan_results"])
    meta = (await api.call("GET", f"/docs/{ticket['id']}/meta")).body
    # The attack of the review: the upload URL is still valid and takes other bytes.
    assert await api.put(ticket["upload"], EICAR) == 200
    status, body = await _content(api, ticket["id"])
    assert status == 302
    assert (
        hashlib.sha256(body).hexdigest() == meta["sha256"] == hashlib.sha256(harmless).hexdigest()
    )
    # A second confirm pins nothing new, and dedup still hands out verdicts of the real bytes.
    again = await api.call("POST", f"/docs/{ticket['id']}/confirm-upload")
    assert again.status == 202 and again.body["status"] == "done"
    assert hashlib.sha256((await _content(api, ticket["id"]))[1]).hexdigest() == meta["sha256"]


async def test_bytes_swapped_between_confirm_and_extraction_are_never_read(api: Api) -> None:
    data = b"first bytes " + uuid.uuid4().hex.encode()
    ticket = (await api.request_upload("race.txt", data)).body
    assert await api.put(ticket["upload"], data) == 200
    assert (await api.call("POST", f"/docs/{ticket['id']}/confirm-upload")).status == 202
    swapped = b"other bytes " + uuid.uuid4().hex.encode()
    assert await api.put(ticket["upload"], swapped) == 200  # races the worker's read
    await api.wait_done(ticket["id"])
    meta = (await api.call("GET", f"/docs/{ticket['id']}/meta")).body
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert (await _content(api, ticket["id"]))[1] == data


async def test_content_is_only_for_the_owner_and_only_once_confirmed(
    api: Api, pipeline: Pipeline
) -> None:
    data = b"mine " + uuid.uuid4().hex.encode()
    ticket = (await api.request_upload("mine.txt", data)).body
    early = await api.call("GET", f"/docs/{ticket['id']}/content")
    assert early.status == 409 and "no confirmed content" in early.body["error"]
    assert await api.put(ticket["upload"], data) == 200
    assert (await api.call("POST", f"/docs/{ticket['id']}/confirm-upload")).status == 202
    other = pipeline.add_tenant(f"other-{uuid.uuid4().hex[:6]}")
    status, body = await _content(api, ticket["id"], key=other)
    assert status == 404 and b"not found" in body
    assert (await _content(api, ticket["id"]))[1] == data
    anonymous = await api.call("GET", f"/docs/{ticket['id']}/content", key="")
    assert anonymous.status == 401


async def test_a_multipart_upload_is_pinned_too(api: Api) -> None:
    data = os.urandom(7 << 20)  # over the test stack's 6 MiB multipart threshold
    ticket = (await api.request_upload("parts.bin", data)).body
    offset = 0
    for part in ticket["upload"]["parts"]:
        chunk = data[offset : offset + part["size"]]
        async with api.session.put(part["url"], data=io.BytesIO(chunk)) as resp:
            assert resp.status == 200
        offset += part["size"]
    assert (await api.call("POST", f"/docs/{ticket['id']}/confirm-upload")).status == 202
    await api.wait_done(ticket["id"])
    assert (await _content(api, ticket["id"]))[1] == data
