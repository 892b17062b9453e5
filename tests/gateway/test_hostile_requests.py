"""Requests built to break the gateway get 4xx that say what is wrong, never a 500."""

from __future__ import annotations

import uuid

import pytest

from ops.ids import uuid7
from tests.gateway.client import Api

pytestmark = pytest.mark.integration


async def _raw_post(api: Api, path: str, body: bytes) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
    async with api.session.post(api.base + path, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_five_thousand_digit_size_is_a_400(api: Api) -> None:
    body = b'{"file_name":"a","file_size":1' + b"0" * 5000 + b"}"
    status, reply = await _raw_post(api, "/docs/request-upload", body)
    assert status == 400 and "not valid JSON" in str(reply["error"])


async def test_a_lone_surrogate_in_the_name_is_a_400(api: Api) -> None:
    status, reply = await _raw_post(
        api, "/docs/request-upload", b'{"file_name":"a\\ud800b","file_size":1}'
    )
    assert status == 400 and "surrogate" in str(reply["error"])


@pytest.mark.parametrize(
    "extra",
    [
        {"sha256": "a" * 64 + "\n"},
        {"content_type": "text/plain\r\nX-Evil: 1"},
        {"content_type": "text/plain\n"},
        {"content_type": "tëxt/plain"},
        {"sha256": "\u0660" * 64},  # Arabic-Indic zeros: Unicode digits, not hex
    ],
)
async def test_patterns_match_whole_ascii_values_only(api: Api, extra: dict[str, str]) -> None:
    reply = await api.call(
        "POST", "/docs/request-upload", json={"file_name": "a", "file_size": 1, **extra}
    )
    assert reply.status == 400, reply.body


@pytest.mark.parametrize("shape", ["urn:uuid:{}", "{}%0A", "{}%20", "hex:{}"])
async def test_only_canonical_v7_ids_are_ids(api: Api, shape: str) -> None:
    doc_id = str(uuid7())
    text = doc_id.replace("-", "") if shape == "hex:{}" else shape.format(doc_id)
    reply = await api.call("GET", f"/docs/{text}/meta")
    assert reply.status == 400, reply.body
    assert (await api.call("GET", f"/docs/{doc_id}/meta")).status == 404  # the control


async def test_urls_never_come_from_the_host_header(api: Api) -> None:
    reply = await api.call(
        "POST",
        "/docs/request-upload",
        json={"file_name": "a.txt", "file_size": 3},
        headers={"Host": "evil.example"},
    )
    assert reply.status == 201
    for url in reply.body["urls"].values():
        assert url.startswith(api.base) and "evil.example" not in url


async def test_405_says_what_is_allowed(api: Api) -> None:
    async with api.session.delete(f"{api.base}/docs/request-upload") as resp:
        assert resp.status == 405
        assert "POST" in resp.headers["Allow"]
        assert (await resp.json())["status"] == 405


async def test_events_authenticate_before_looking_at_the_id(api: Api) -> None:
    bad_id = await api.call("GET", "/docs/not-an-id/events", key="")
    assert bad_id.status == 401
    forged = await api.call("GET", "/docs/not-an-id/events?token=x.1.y", key="")
    assert forged.status == 401
    unknown = await api.call("GET", f"/docs/{uuid7()}/events")
    assert unknown.status == 404
    assert uuid.UUID(str(uuid7())).version == 7
