"""GET /docs: the tenant's history, newest first, paged by cursor, filtered, with the ratio."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import psycopg
import pytest
from multidict import MultiDict
from psycopg import ClientCursor

from gateway.listing import (
    ListQuery,
    decode_cursor,
    encode_cursor,
    list_sql,
    parse_list_query,
)
from gateway.validation import Invalid
from ops.ids import uuid7
from tests.gateway.client import Api
from tests.gateway.conftest import EICAR, conforms
from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration


def test_a_cursor_is_the_last_id_and_nothing_else_passes() -> None:
    doc_id = uuid7()
    assert decode_cursor(encode_cursor(doc_id)) == doc_id
    v4 = uuid.uuid4()
    for bad in ("", "short", encode_cursor(v4), "!" * 22, encode_cursor(doc_id) + "A"):
        with pytest.raises(Invalid, match=r"next\.after of a previous page"):
            decode_cursor(bad)


def test_a_name_filter_takes_wildcards_literally() -> None:
    sql, params = list_sql("t", parse_list_query(MultiDict(q="100%_\\x")))
    assert "file_name ILIKE %(pattern)s" in sql
    assert params["pattern"] == "%100\\%\\_\\\\x%"
    assert parse_list_query(MultiDict(sha256="AB" * 32)).sha256 == "ab" * 32


async def _tenant_api(api: Api, pipeline: Pipeline, name: str) -> Api:
    return Api(api.session, api.base, pipeline.add_tenant(f"{name}-{uuid.uuid4().hex[:6]}"))


async def _request(api: Api, name: str, sha256: str | None = None) -> str:
    body: dict[str, Any] = {"file_name": name, "file_size": 10}
    if sha256:
        body["sha256"] = sha256
    reply = await api.call("POST", "/docs/request-upload", json=body)
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


async def _list(api: Api, query: str = "") -> dict[str, Any]:
    reply = await api.call("GET", f"/docs{query}")
    assert reply.status == 200, reply.body
    conforms(reply.body, "DocumentList")
    return dict(reply.body)


async def test_pages_go_newest_first_and_the_cursor_reaches_the_end(
    api: Api, pipeline: Pipeline
) -> None:
    mine = await _tenant_api(api, pipeline, "pages")
    ids = [await _request(mine, f"page-{i}.txt") for i in range(5)]
    first = await _list(mine, "?limit=2")
    assert [d["id"] for d in first["documents"]] == [ids[4], ids[3]]
    assert first["documents"][0]["status"] == "requested"
    assert first["documents"][0]["urls"]["page"].endswith(f"/d/{ids[4]}")
    second = await _list(mine, f"?limit=2&after={first['next']['after']}")
    assert [d["id"] for d in second["documents"]] == [ids[2], ids[1]]
    # next.url is the same page, ready to follow.
    query = second["next"]["url"].removeprefix(f"{pipeline.url}/docs")
    last = await _list(mine, query)
    assert [d["id"] for d in last["documents"]] == [ids[0]] and "next" not in last
    everything = await _list(mine)
    assert [d["id"] for d in everything["documents"]] == ids[::-1] and "next" not in everything


async def test_filters_by_a_piece_of_the_name_and_by_sha256(api: Api, pipeline: Pipeline) -> None:
    mine = await _tenant_api(api, pipeline, "filters")
    sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    names = ["Invoice-2024.pdf", "old_INVOICE.pdf", "photo.jpg", "100%sure.txt"]
    ids = {name: await _request(mine, name, sha if name == "photo.jpg" else None) for name in names}

    async def names_for(query: str) -> list[str]:
        return [d["file_name"] for d in (await _list(mine, query))["documents"]]

    assert await names_for("?q=invoice") == ["old_INVOICE.pdf", "Invoice-2024.pdf"]
    assert await names_for("?q=_") == ["old_INVOICE.pdf"]  # a literal underscore
    assert await names_for("?q=%25") == ["100%sure.txt"]  # a literal percent sign
    assert await names_for("?q=nothing-like-it") == []
    by_hash = (await _list(mine, f"?sha256={sha.upper()}"))["documents"]
    assert [d["id"] for d in by_hash] == [ids["photo.jpg"]] and by_hash[0]["sha256"] == sha
    both = await names_for(f"?sha256={sha}&q=invoice")
    assert both == []


async def test_each_document_comes_with_its_ratio(api: Api, pipeline: Pipeline) -> None:
    mine = await _tenant_api(api, pipeline, "ratio")
    eicar = await mine.upload(f"eicar-{uuid.uuid4().hex[:6]}.com", EICAR)
    clean = await mine.upload("notes.txt", b"harmless " + uuid.uuid4().hex.encode())
    await mine.wait_done(eicar["id"])
    await mine.wait_done(clean["id"])
    docs = {d["id"]: d for d in (await _list(mine))["documents"]}
    assert docs[eicar["id"]]["summary"] == {"flagged": 1, "scanned": 3, "expected": 3}
    assert docs[eicar["id"]]["verdict"] == "malicious" and docs[eicar["id"]]["status"] == "done"
    assert docs[clean["id"]]["summary"] == {"flagged": 0, "scanned": 3, "expected": 3}
    assert docs[clean["id"]]["verdict"] == "clean"
    assert docs[eicar["id"]]["sha256"] == hashlib.sha256(EICAR).hexdigest()


async def test_a_tenant_sees_only_its_own_documents(api: Api, pipeline: Pipeline) -> None:
    alice = await _tenant_api(api, pipeline, "alice")
    bob = await _tenant_api(api, pipeline, "bob")
    sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    bobs = [await _request(bob, "bob.txt", sha)]
    alices = [await _request(alice, "alice.txt", sha) for _ in range(3)]
    bobs.append(await _request(bob, "bob-2.txt"))
    assert [d["id"] for d in (await _list(alice))["documents"]] == alices[::-1]
    assert [d["id"] for d in (await _list(bob))["documents"]] == bobs[::-1]
    # Alice's cursor is only a position: with Bob's key it pages Bob's documents.
    cursor = (await _list(alice, "?limit=1"))["next"]["after"]
    assert [d["id"] for d in (await _list(bob, f"?after={cursor}"))["documents"]] == [bobs[0]]
    assert [d["id"] for d in (await _list(bob, f"?sha256={sha}"))["documents"]] == [bobs[0]]
    assert [d["id"] for d in (await _list(bob, "?q=alice"))["documents"]] == []


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?limit=0", "limit must be a whole number from 1 to 100"),
        ("?limit=101", "limit must be a whole number from 1 to 100"),
        ("?limit=ten", "limit must be a whole number"),
        ("?limit=", "limit must not be empty"),
        ("?after=not-a-cursor", "next.after of a previous page"),
        (f"?after={encode_cursor(uuid.uuid4())}", "next.after of a previous page"),
        ("?sha256=xyz", "sha256 must be 64 hexadecimal characters"),
        ("?q=", "q must not be empty"),
        ("?q=" + "a" * 201, "q must be at most 200 characters"),
        ("?q=a%01b", "no control characters"),
        ("?q=a%00b", "no control characters"),
        ("?page=2", "unknown parameter(s): page"),
        ("?limit=1&limit=2", "limit must be given at most once"),
    ],
)
async def test_bad_parameters_are_400s_that_say_why(api: Api, query: str, words: str) -> None:
    reply = await api.call("GET", f"/docs{query}")
    assert reply.status == 400, reply.body
    conforms(reply.body, "Error")
    assert words in reply.body["error"]


async def test_the_list_wants_a_key(api: Api) -> None:
    assert (await api.call("GET", "/docs", key="")).status == 401
    assert (await api.call("GET", "/docs", key="wrong-key")).status == 401


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _plan_nodes(child))]


def test_a_page_is_an_index_walk_on_every_partition(
    pg_schema: tuple[psycopg.Connection[Any], str],
) -> None:
    """20,000 documents of two tenants over four months: the first page, a page deep into the
    history and the hash filter read an index, and no partition holding rows is scanned."""
    conn, _ = pg_schema
    conn.execute(
        "INSERT INTO documents (id, tenant, file_name, file_size, sha256, created_at)"
        " SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7'"
        "   || substr(md5(g::text), 1, 3) || '8' || substr(md5(g::text), 4, 15))::uuid,"
        "   CASE WHEN g % 4 = 0 THEN 'small' ELSE 'big' END, 'f-' || g, g,"
        "   encode(sha256(g::text::bytea), 'hex'), ts"
        " FROM (SELECT g, now() - make_interval(secs => g * 600) AS ts"
        "       FROM generate_series(1, 20000) g) AS s"
    )
    conn.execute("ANALYZE documents")
    deep = conn.execute(
        "SELECT id FROM documents WHERE tenant = 'big' ORDER BY created_at DESC OFFSET 9000 LIMIT 1"
    ).fetchone()
    assert deep is not None
    sha = hashlib.sha256(b"77").hexdigest()
    for tenant, query in [
        ("big", ListQuery()),
        ("big", ListQuery(after=deep[0])),
        ("small", ListQuery(sha256=sha)),
    ]:
        sql, params = list_sql(tenant, query)
        with ClientCursor(conn) as cur:
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            row = cur.fetchone()
        assert row is not None
        plan = row[0][0]
        nodes = _plan_nodes(plan["Plan"])
        indexes = [n["Index Name"] for n in nodes if n["Node Type"] == "Index Scan"]
        assert indexes and all("_tenant_" in name for name in indexes), json.dumps(plan)
        # A sequential scan is only ever of an empty partition (one of the months ahead).
        seq = [n for n in nodes if n["Node Type"] == "Seq Scan"]
        assert all(n["Actual Rows"] == 0 and not n.get("Rows Removed by Filter") for n in seq)
        assert plan["Execution Time"] < 50, plan["Execution Time"]
