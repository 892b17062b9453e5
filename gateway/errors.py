"""Errors as JSON: every 4xx says what is wrong, and bad input never becomes a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from aiohttp import web

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fail(status: int, message: str, **extra: Any) -> NoReturn:
    raise _http(status, json.dumps({"error": message, "status": status, **extra}))


def _http(status: int, body: str) -> web.HTTPException:
    exc = web.HTTPException(text=body, content_type="application/json")
    exc.set_status(status)
    return exc


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        raise _http(exc.status, json.dumps({"error": exc.reason, "status": exc.status})) from None
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        raise _http(500, json.dumps({"error": "internal error", "status": 500})) from None


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, LookupError, RecursionError) as exc:
        fail(400, f"body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        fail(400, "body must be a JSON object")
    return body
