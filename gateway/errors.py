"""Errors as JSON: every 4xx says what is wrong, and bad input never becomes a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from aiohttp import web

from gateway.db import RETRY_AFTER_S
from gateway.db import UNAVAILABLE as POSTGRES_UNAVAILABLE

log = logging.getLogger(__name__)


def _store_outages() -> tuple[type[BaseException], ...]:
    """Cassandra or the object store away: as honest a 503 as Postgres being away."""
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )
    from cassandra import OperationTimedOut, ReadTimeout, Unavailable
    from cassandra.cluster import NoHostAvailable

    return (
        *POSTGRES_UNAVAILABLE,
        NoHostAvailable,
        OperationTimedOut,
        ReadTimeout,
        Unavailable,
        EndpointConnectionError,
        ConnectTimeoutError,
        ReadTimeoutError,
        ConnectionClosedError,
    )


UNAVAILABLE = _store_outages()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fail(status: int, message: str, **extra: Any) -> NoReturn:
    raise _http(status, json.dumps({"error": message, "status": status, **extra}))


def fail_retry_later(status: int, message: str, retry_after_s: int, **extra: Any) -> NoReturn:
    """An error worth retrying (429): ``Retry-After`` says when, and so does the body."""
    body = {"error": message, "status": status, "retry_after_s": retry_after_s, **extra}
    raise _http(status, json.dumps(body), {"Retry-After": str(retry_after_s)})


def _http(status: int, body: str, headers: Any = None) -> web.HTTPException:
    exc = web.HTTPException(text=body, content_type="application/json", headers=headers)
    exc.set_status(status)
    return exc


# Headers of aiohttp's own errors that the JSON version keeps (405 must say what is allowed).
_KEPT = ("Allow", "Retry-After", "WWW-Authenticate")


def json_error(request: web.Request, exc: Exception) -> web.HTTPException | None:
    """The JSON error a client gets for ``exc`` (a 503 for a store away, a logged 500 for a
    bug); None when ``exc`` already is one, or is no error (a redirect)."""
    if isinstance(exc, web.HTTPException):
        if exc.content_type == "application/json" or exc.status < 400:
            return None
        kept = {h: exc.headers[h] for h in _KEPT if h in exc.headers}
        return _http(exc.status, json.dumps({"error": exc.reason, "status": exc.status}), kept)
    if isinstance(exc, UNAVAILABLE):  # a store is away: say so and when to come back
        log.warning("%s %s: a store is unavailable: %s", request.method, request.path, exc)
        body = json.dumps({"error": "temporarily unavailable, retry shortly", "status": 503})
        return _http(503, body, {"Retry-After": str(RETRY_AFTER_S)})
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return _http(500, json.dumps({"error": "internal error", "status": 500}))


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (ValueError, LookupError, RecursionError) as exc:  # incl. ints over 4300 digits
        fail(400, f"body is not valid JSON: {str(exc)[:200]}")
    if not isinstance(body, dict):
        fail(400, "body must be a JSON object")
    return body
