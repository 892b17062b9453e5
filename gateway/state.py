"""The gateway's shared state, typed, under one ``web.AppKey``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from gateway.auth import ApiKeys, bearer_key
from gateway.cache import DocumentCache
from gateway.errors import fail
from gateway.hub import Hub
from ops.settings import Settings


@dataclass
class GatewayState:
    settings: Settings
    pool: AsyncConnectionPool
    s3: Any
    keys: ApiKeys
    cassandra: Any
    hub: Hub
    cache: DocumentCache = field(default_factory=lambda: DocumentCache(0))


APP = web.AppKey("intellidox_gateway", GatewayState)


async def tenant_of(request: web.Request) -> str:
    """The caller's tenant from ``Authorization: Bearer``; 401 otherwise."""
    key = bearer_key(request.headers.get("Authorization"))
    if key is None:
        fail(401, "missing credentials: send 'Authorization: Bearer <api key>'")
    tenant = await request.app[APP].keys.tenant_for(key)
    if tenant is None:
        fail(401, "unknown or revoked API key")
    return tenant


def query_value(request: web.Request, name: str) -> str | None:
    """``request.query.get(name)`` without keeping the parsed query on the request: an event
    stream's request lives as long as the stream (hours, 10,000 of them per gateway)."""
    for key, value in parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True):
        if key == name:
            return value
    return None
