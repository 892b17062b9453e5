"""The full journey through the real pipeline: upload, extraction, scanners, projections."""

from __future__ import annotations

import hashlib
import io
import os
import uuid

import pytest

from tests.gateway.client import Api
from tests.gateway.conftest import EICAR, conforms, make_pdf

pytestmark = pytest.mark.integration


async def test_a_pdf_goes_through_extraction_and_every_scanner(api: Api) -> None:
    pdf = make_pdf(pages=3) + uuid.uuid4().hex.encode()  # unique bytes: no reuse
    ticket = await api.upload("report.pdf", pdf, content_type="application/pdf")
    conforms(ticket, "UploadTicket")
    results = await api.wait_done(ticket["id"])
    conforms(results, "ScanResults")
    assert {r["scanner"] for r in results["scan_results"]} == {"clamav", "sim-a", "sim-b"}
    assert all(r["verdict"] == "clean" and not r["reused"] for r in results["scan_results"])
    assert results["summary"] == {"flagged": 0, "scanned": 3, "expected": 3}
    assert "next" not in results
    meta = (await api.call("GET", f"/docs/{ticket['id']}/meta")).body
    conforms(meta, "Document")
    assert meta["status"] == "done" and meta["file_type"] == "pdf"
    assert meta["meta"]["pdf_pages"] == 3
    assert meta["meta"]["pdf_title"] == "Quarterly report"
    assert meta["script_version"]


async def test_eicar_is_flagged_by_clamav_and_simulated_answers(api: Api) -> None:
    ticket = await api.upload(f"eicar-{uuid.uuid4().hex[:6]}.com", EICAR)
    results = await api.wait_done(ticket["id"])
    by_scanner = {r["scanner"]: r for r in results["scan_results"]}
    assert by_scanner["clamav"]["verdict"] == "malicious"
    assert by_scanner["clamav"]["result"].startswith("Eicar-Test-Signature")
    assert by_scanner["clamav"]["engine_version"]
    assert by_scanner["sim-a"]["verdict"] == "clean"
    assert results["summary"]["flagged"] == 1


async def test_same_content_again_reuses_every_verdict(api: Api) -> None:
    data = b"reuse me " + uuid.uuid4().hex.encode()
    first = await api.upload("one.txt", data)
    first_results = await api.wait_done(first["id"])
    # Declared hash: the client can skip the upload altogether.
    dup = await api.request_upload("two.txt", data, declare_sha=True)
    assert dup.status == 200 and dup.body["duplicate_of"] == first["id"]
    conforms(dup.body, "Duplicate")
    # Undeclared: uploaded and extracted again, but scanned 0 times.
    second = await api.upload("three.txt", data)
    results = await api.wait_done(second["id"])
    assert results["summary"]["scanned"] == 3
    assert all(r["reused"] for r in results["scan_results"])
    original = {r["scanner"]: r["end_at"] for r in first_results["scan_results"]}
    assert {r["scanner"]: r["end_at"] for r in results["scan_results"]} == original


async def test_a_big_file_goes_up_in_parts_and_the_gateway_completes_it(api: Api) -> None:
    data = os.urandom(11 << 20)  # over the test stack's 6 MiB threshold: 3 parts of <= 5 MiB
    ticket = (await api.request_upload("big.bin", data)).body
    plan = ticket["upload"]
    conforms(ticket, "UploadTicket")
    assert plan["method"] == "MULTIPART" and [p["size"] for p in plan["parts"]] == [
        5 << 20,
        5 << 20,
        1 << 20,
    ]
    early = await api.call("POST", f"/docs/{ticket['id']}/confirm-upload")
    assert early.status == 409  # no part yet
    offset = 0
    for part in plan["parts"]:
        chunk = data[offset : offset + part["size"]]
        async with api.session.put(part["url"], data=io.BytesIO(chunk)) as resp:
            assert resp.status == 200
        offset += part["size"]
    assert (await api.call("POST", f"/docs/{ticket['id']}/confirm-upload")).status == 202
    await api.wait_done(ticket["id"])
    meta = (await api.call("GET", f"/docs/{ticket['id']}/meta")).body
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() and meta["file_size"] == len(data)
