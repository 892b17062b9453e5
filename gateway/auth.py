"""Who is calling: API keys (one tenant each) and signed, short-lived event-stream tokens.

Keys are stored hashed (SHA-256) in Postgres; a small in-process cache keeps the hot path off
the database.  A browser ``EventSource`` cannot send headers, so the events URL carries an
HMAC token bound to one document, one tenant and an expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from gateway import db

KEY_CACHE_TTL_S = 30.0
KEY_CACHE_MAX = 10_000  # per kind: unknown keys from a scan of random tokens cannot grow it
MAX_TOKEN_TTL_S = 7 * 24 * 3600  # a token claiming a later expiry was not made by us
_EXPIRY = re.compile(r"[1-9][0-9]{0,11}", re.ASCII)


@dataclass(frozen=True)
class Principal:
    """Who a key belongs to, and the rate limits stored with it (None: the gateway's default)."""

    tenant: str
    rate_per_s: float | None = None
    rate_burst: int | None = None
    max_uploads: int | None = None


class BoundedCache:
    """A TTL cache that drops its oldest entries beyond ``limit`` (insertion order)."""

    def __init__(self, limit: int = KEY_CACHE_MAX) -> None:
        self.limit = limit
        self._items: OrderedDict[str, tuple[Principal | None, float]] = OrderedDict()

    def get(self, key: str) -> tuple[Principal | None] | None:
        hit = self._items.get(key)
        if hit is None or hit[1] <= time.monotonic():
            return None
        return (hit[0],)

    def put(self, key: str, value: Principal | None) -> None:
        self._items[key] = (value, time.monotonic() + KEY_CACHE_TTL_S)
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass
class ApiKeys:
    """Resolve bearer keys to tenants, with a short, bounded positive/negative cache."""

    pool: AsyncConnectionPool
    _cache: BoundedCache
    _unknown: BoundedCache

    @classmethod
    def create(cls, pool: AsyncConnectionPool) -> ApiKeys:
        return cls(pool, BoundedCache(), BoundedCache())

    async def ensure(self, api_key: str, tenant: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO api_keys (key_sha256, tenant) VALUES (%s, %s) "
                "ON CONFLICT (key_sha256) DO UPDATE SET tenant = EXCLUDED.tenant",
                (key_digest(api_key), tenant),
            )

    async def revoke_dev_keys(self, *api_keys: str) -> None:
        """Delete the rows of these (dev) keys, wherever an earlier local run put them."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "DELETE FROM api_keys WHERE key_sha256 = ANY(%s)",
                ([key_digest(k) for k in api_keys],),
            )
        self._cache.clear()
        self._unknown.clear()

    async def tenant_for(self, api_key: str) -> str | None:
        principal = await self.principal_for(api_key)
        return principal.tenant if principal else None

    async def principal_for(self, api_key: str) -> Principal | None:
        digest = key_digest(api_key)
        hit = self._cache.get(digest) or self._unknown.get(digest)
        if hit is not None:
            return hit[0]
        row = await db.read(self.pool, lambda conn: _key_row(conn, digest))
        principal = Principal(*row) if row else None
        (self._cache if principal else self._unknown).put(digest, principal)
        return principal


async def _key_row(conn: AsyncConnection[Any], digest: str) -> tuple[Any, ...] | None:
    cur = await conn.execute(
        "SELECT tenant, rate_per_s, rate_burst, max_uploads FROM api_keys"
        " WHERE key_sha256 = %s AND revoked_at IS NULL",
        (digest,),
        prepare=True,
    )
    return await cur.fetchone()


def bearer_key(header: str | None) -> str | None:
    if not header or not header.startswith("Bearer "):
        return None
    key = header[len("Bearer ") :].strip()
    return key or None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_events_token(secret: str, doc_id: str, tenant: str, ttl_s: int) -> str:
    """``<tenant>.<expiry>.<mac>``, all URL-safe; the MAC covers the document id too."""
    expires = int(time.time()) + ttl_s
    payload = f"{doc_id}|{tenant}|{expires}".encode()
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:18]
    return f"{_b64(tenant.encode())}.{expires}.{_b64(mac)}"


def verify_events_token(secret: str, doc_id: str, token: str) -> str | None:
    """The tenant the token was issued to, or None when it is forged, for another
    document, or expired."""
    try:
        tenant_b64, expires_text, mac_b64 = token.split(".")
        tenant = _unb64(tenant_b64).decode()
        mac = _unb64(mac_b64)
    except (ValueError, UnicodeDecodeError):
        return None
    # Canonical digits only ("+1", " 1", "0x1", "1_0" are not an expiry), and no further
    # ahead than any token we issue.
    if not _EXPIRY.fullmatch(expires_text) or not tenant:
        return None
    expires = int(expires_text)
    if expires > time.time() + MAX_TOKEN_TTL_S:
        return None
    payload = f"{doc_id}|{tenant}|{expires}".encode()
    good = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:18]
    if not hmac.compare_digest(mac, good) or expires < time.time():
        return None
    return tenant


TenantResolver = Callable[[str], Awaitable[str | None]]
