"""The admin API: extractor scripts, for keys of a tenant listed in ``admin_tenants``.

The same operations as ``intellidox extractor`` (see :mod:`ops.extractor_admin`).  Any other
valid key gets 403; no key or a bad one gets 401.  A script is sent as the raw request body.
Publishing runs the script check the gateway was created with (``create_app(check_script=)``;
`intellidox gateway` passes the worker's, :func:`streams.script_check.check`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.errors import fail, json_body
from gateway.state import APP, tenant_of
from ops import extractor_admin as admin
from ops.extractor_admin import parse_since
from ops.extractor_store import MAX_SCRIPT_BYTES

admin_routes = web.RouteTableDef()
SCRIPT_CHECK: web.AppKey[admin.ScriptCheck] = web.AppKey("intellidox_script_check")
_TRUE = {"1", "true", "yes", "on"}


async def _admin(request: web.Request) -> str:
    tenant = await tenant_of(request)
    if not request.app[APP].settings.is_admin(tenant):
        fail(403, "this API key has no admin rights")
    return tenant


async def _run(request: web.Request, operation: Any, status: int = 200) -> web.Response:
    """Run an admin operation; its AdminError becomes the HTTP error it names."""
    try:
        result = await operation
    except admin.AdminError as exc:
        fail(exc.status, exc.message)
    if isinstance(result, dict) and result.get("created") is False:  # republished content
        status = 200
    return web.json_response(result, status=status)


@admin_routes.get("/admin/extractor/scripts")
async def list_scripts(request: web.Request) -> web.Response:
    await _admin(request)
    return await _run(request, admin.list_versions(request.app[APP].settings))


@admin_routes.post("/admin/extractor/scripts")
async def publish_script(request: web.Request) -> web.Response:
    """Body: the script itself; ``?activate=true`` makes it active, ``?note=`` describes it."""
    await _admin(request)
    state, check = request.app[APP], request.app.get(SCRIPT_CHECK)
    if check is None:
        fail(503, "this gateway was started without the extractor script check")
    source = await _body(request)
    activate = request.query.get("activate", "").lower() in _TRUE
    note = request.query.get("note")
    operation = admin.publish(state.settings, source, check, activate=activate, note=note)
    return await _run(request, operation, status=201)


async def _body(request: web.Request) -> bytes:
    """The raw body, up to the script size limit (the app's 64 KiB cap is for JSON)."""
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_SCRIPT_BYTES:
            fail(413, f"a script is at most {MAX_SCRIPT_BYTES} bytes")
    return b"".join(chunks)


@admin_routes.get("/admin/extractor/scripts/{version}")
async def show_script(request: web.Request) -> web.Response:
    await _admin(request)
    version = request.match_info["version"]
    return await _run(request, admin.show(request.app[APP].settings, version))


@admin_routes.post("/admin/extractor/activate")
async def activate_script(request: web.Request) -> web.Response:
    """Body: ``{"version": "v3-…"}``."""
    await _admin(request)
    version = (await json_body(request)).get("version")
    if not isinstance(version, str) or not version:
        fail(400, 'body must be {"version": "<version>"}')
    return await _run(request, admin.activate(request.app[APP].settings, version))


@admin_routes.post("/admin/extractor/rollback")
async def rollback_script(request: web.Request) -> web.Response:
    await _admin(request)
    return await _run(request, admin.rollback(request.app[APP].settings))


@admin_routes.post("/admin/extractor/reextract")
async def reextract(request: web.Request) -> web.Response:
    """Body: ``{"since": "7d" | ISO time, "version": optional, "tenant": optional}``."""
    await _admin(request)
    body = await json_body(request)
    try:
        since = parse_since(str(body.get("since", "")))
    except (ValueError, OverflowError) as exc:
        fail(400, str(exc))
    version, tenant = body.get("version"), body.get("tenant")
    if not all(v is None or isinstance(v, str) for v in (version, tenant)):
        fail(400, "version and tenant must be strings")
    settings = request.app[APP].settings
    return await _run(request, admin.reextract(settings, since, version, tenant), status=202)
