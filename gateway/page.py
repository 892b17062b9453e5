"""The results page: one static HTML page and its plain JS modules (no build step).

``/`` and every deep link ``/d/{id}`` serve the same page; its modules read the path and
show the upload form and history, or one document's live view.  ``/ui/config`` tells the
page what it cannot know: the upload limit, and the dev key, but only in dev mode (a
production gateway never hands a key to anyone).  The page and its files carry no secret,
so they are served without a key; everything they show is read through the API with one.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from aiohttp import web

from gateway.errors import fail
from gateway.state import APP
from ops.ids import parse_doc_id
from ops.settings import Settings

page_routes = web.RouteTableDef()

_ASSET = re.compile(r"[a-z0-9-]+\.(js|css|svg)", re.ASCII)
_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}


def _static(name: str) -> bytes | None:
    entry = resources.files("gateway").joinpath("static").joinpath(name)
    return entry.read_bytes() if entry.is_file() else None


def _headers(request: web.Request) -> dict[str, str]:
    """The page talks to the gateway and to the object store's pre-signed URLs only."""
    store = request.app[APP].settings.s3.endpoint
    policy = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"connect-src 'self' {store}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def _page(request: web.Request) -> web.Response:
    body = _static("index.html")
    assert body is not None  # shipped with the package
    return web.Response(body=body, content_type="text/html", headers=_headers(request))


@page_routes.get("/")
async def index(request: web.Request) -> web.Response:
    return _page(request)


@page_routes.get("/d/{doc_id}")
async def deep_link(request: web.Request) -> web.Response:
    """A document's own page; whose document it is, the API decides once the key is known."""
    try:
        parse_doc_id(request.match_info["doc_id"])
    except ValueError as exc:
        fail(404, f"no such page: {exc}")
    return _page(request)


@page_routes.get("/static/{name}")
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = _static(name) if _ASSET.fullmatch(name) else None
    if body is None:
        fail(404, f"no such file: {name[:80]}")
    kind = _TYPES[name.rsplit(".", 1)[1]]
    return web.Response(body=body, content_type=kind, headers=_headers(request))


@page_routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.Response:
    """Browsers ask for it whatever the page links to."""
    body = _static("favicon.svg")
    assert body is not None
    return web.Response(body=body, content_type="image/svg+xml", headers=_headers(request))


def page_config(settings: Settings) -> dict[str, Any]:
    """What the page may know: the dev key only in dev mode (the page pre-fills it)."""
    return {
        "dev_mode": settings.dev_mode,
        "dev_api_key": settings.dev_api_key if settings.dev_mode else None,
        "max_file_size": settings.max_file_size,
    }


@page_routes.get("/ui/config")
async def config(request: web.Request) -> web.Response:
    body = page_config(request.app[APP].settings)
    return web.json_response(body, headers={"Cache-Control": "no-store"})
