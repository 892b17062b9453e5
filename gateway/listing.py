"""``GET /docs``: the tenant's documents, newest first, with their status and detection ratio.

Filters: ``sha256`` (exact) and ``q`` (a piece of the file name, case-insensitive).  Pages
are cut by an opaque cursor, ``after``: the last listed document's id.  A v7 id carries its
creation time, so the cursor is a position in (created_at, id) order that also tells
Postgres which monthly partitions are left to read; a page is one index range walk
(migration 0007) that stops after ``limit`` rows, whatever the tenant's history holds.

The ratio comes from the verdicts projection (Cassandra), the same rows ``scan-results``
serves, so the list and a document's page never disagree: one single-partition read per
listed document that has verdicts, all in flight at once (:func:`read_verdict_classes`).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gateway import db
from gateway.errors import fail
from gateway.state import APP, GatewayState, tenant_of
from gateway.streaming import visible_status
from gateway.validation import Invalid
from gateway.verdicts import read_verdict_classes, summary
from ops.ids import created_at_of

listing_routes = web.RouteTableDef()

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_QUERY = 200
_PARAMS = ("after", "limit", "sha256", "q")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_CURSOR = re.compile(r"[A-Za-z0-9_-]{22}", re.ASCII)
_LIMIT = re.compile(r"[0-9]{1,3}", re.ASCII)
# Only documents past the upload can have verdicts: the others need no Cassandra read.
_SCANNED = frozenset({"in_progress", "done", "failed"})
_COLUMNS = (
    "id, file_name, file_size, file_type, content_type, sha256, created_at, uploaded_at,"
    " updated_at, process_status, status_reason, expected_scanners"
)


@dataclass(frozen=True)
class ListQuery:
    """One page's question, validated."""

    after: uuid.UUID | None = None
    limit: int = DEFAULT_LIMIT
    sha256: str | None = None
    q: str | None = None


def encode_cursor(doc_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(doc_id.bytes).rstrip(b"=").decode()


def decode_cursor(text: str) -> uuid.UUID:
    bad = Invalid("after must be the next.after of a previous page (an opaque cursor)")
    if not _CURSOR.fullmatch(text):
        raise bad
    try:
        doc_id = uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=="))
        created_at_of(doc_id)  # a v7 id, with a time in range
    except (ValueError, binascii.Error, OverflowError, OSError):
        raise bad from None
    return doc_id


def parse_list_query(query: MultiMapping[str]) -> ListQuery:
    """The query string as a :class:`ListQuery`; :class:`Invalid` says what is wrong."""
    unknown = sorted(set(query) - set(_PARAMS))
    if unknown:
        raise Invalid(f"unknown parameter(s): {', '.join(unknown)}; allowed: {', '.join(_PARAMS)}")
    values: dict[str, str] = {}
    for name in _PARAMS:
        given = query.getall(name, [])
        if len(given) > 1:
            raise Invalid(f"{name} must be given at most once")
        if given and given[0] == "":
            raise Invalid(f"{name} must not be empty: leave it out instead")
        if given:
            values[name] = given[0]
    parsed = ListQuery()
    if "after" in values:
        parsed = replace(parsed, after=decode_cursor(values["after"]))
    if "limit" in values:
        parsed = replace(parsed, limit=_limit(values["limit"]))
    if "sha256" in values:
        if not _SHA256.fullmatch(values["sha256"]):
            raise Invalid("sha256 must be 64 hexadecimal characters")
        parsed = replace(parsed, sha256=values["sha256"].lower())
    if "q" in values:
        parsed = replace(parsed, q=_text(values["q"]))
    return parsed


def _limit(text: str) -> int:
    if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= MAX_LIMIT:
        raise Invalid(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _text(text: str) -> str:
    if len(text) > MAX_QUERY:
        raise Invalid(f"q must be at most {MAX_QUERY} characters")
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise Invalid("q must be plain text (no control characters)")
    return text


def _like_pattern(text: str) -> str:
    """``%text%`` with the text's own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_sql(tenant: str, query: ListQuery) -> tuple[str, dict[str, Any]]:
    """The page's SELECT, one row more than asked for (to know whether another page follows)."""
    where = ["tenant = %(tenant)s"]
    params: dict[str, Any] = {"tenant": tenant, "limit": query.limit + 1}
    if query.after is not None:
        # The plain bound lets the planner skip the newer partitions; the row comparison
        # (served by the index) places the page exactly after the cursor.
        where += ["created_at <= %(at)s", "(created_at, id) < (%(at)s, %(id)s)"]
        params.update(at=created_at_of(query.after), id=query.after)
    if query.sha256 is not None:
        where.append("sha256 = %(sha256)s")
        params["sha256"] = query.sha256
    if query.q is not None:
        where.append("file_name ILIKE %(pattern)s")
        params["pattern"] = _like_pattern(query.q)
    sql = (
        f"SELECT {_COLUMNS} FROM documents WHERE {' AND '.join(where)}"
        " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
    )
    return sql, params


async def list_documents(
    conn: AsyncConnection[Any], tenant: str, query: ListQuery
) -> list[dict[str, Any]]:
    sql, params = list_sql(tenant, query)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql, params)
    return await cur.fetchall()


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def worst_verdict(rows: list[dict[str, Any]]) -> str | None:
    """What the page's badge shows: malicious over suspicious over clean; None before any."""
    classes = {row.get("verdict") for row in rows}
    for verdict in ("malicious", "suspicious"):
        if verdict in classes:
            return verdict
    return "clean" if rows else None


def item_view(
    state: GatewayState, doc: dict[str, Any], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    doc_id, expected = str(doc["id"]), doc["expected_scanners"]
    base = state.settings.gateway_url
    return {
        "id": doc_id,
        "file_name": doc["file_name"],
        "file_size": doc["file_size"],
        "file_type": doc["file_type"],
        "content_type": doc["content_type"],
        "sha256": doc["sha256"],
        "status": visible_status(doc["process_status"], expected, len(rows)),
        "reason": doc["status_reason"],
        "created_at": _iso(doc["created_at"]),
        "uploaded_at": _iso(doc["uploaded_at"]),
        "updated_at": _iso(doc["updated_at"]),
        "summary": summary(rows, expected),
        "verdict": worst_verdict(rows),
        "urls": {
            "page": f"{base}/d/{doc_id}",
            "meta": f"{base}/docs/{doc_id}/meta",
            "scan_results": f"{base}/docs/{doc_id}/scan-results",
        },
    }


def next_page(state: GatewayState, query: ListQuery, last: uuid.UUID) -> dict[str, str]:
    after = encode_cursor(last)
    params = {"after": after, "limit": str(query.limit)}
    if query.sha256 is not None:
        params["sha256"] = query.sha256
    if query.q is not None:
        params["q"] = query.q
    return {"after": after, "url": f"{state.settings.gateway_url}/docs?{urlencode(params)}"}


@listing_routes.get("/docs")
async def list_docs(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    try:
        query = parse_list_query(request.query)
    except Invalid as exc:
        fail(exc.status, str(exc))
    state = request.app[APP]
    docs = await db.read(state.pool, lambda conn: list_documents(conn, tenant, query))
    more = len(docs) > query.limit
    docs = docs[: query.limit]
    scanned = [doc["id"] for doc in docs if doc["process_status"] in _SCANNED]
    verdicts = await read_verdict_classes(state, scanned)
    body: dict[str, Any] = {
        "documents": [item_view(state, doc, verdicts.get(doc["id"], [])) for doc in docs]
    }
    if more:
        body["next"] = next_page(state, query, docs[-1]["id"])
    return web.json_response(body)
