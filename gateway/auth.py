"""Who is calling: API keys (one tenant each) and signed, short-lived event-stream tokens.

Keys are stored hashed (SHA-256) in Postgres; a small in-process cache keeps the hot path off
the database.  A browser ``EventSource`` cannot send headers, so the events URL carries an
HMAC token bound to one document, one tenant and an expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

KEY_CACHE_TTL_S = 30.0


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass
class ApiKeys:
    """Resolve bearer keys to tenants, with a short positive/negative cache."""

    pool: AsyncConnectionPool
    _cache: dict[str, tuple[str | None, float]]

    @classmethod
    def create(cls, pool: AsyncConnectionPool) -> ApiKeys:
        return cls(pool, {})

    async def ensure(self, api_key: str, tenant: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO api_keys (key_sha256, tenant) VALUES (%s, %s) "
                "ON CONFLICT (key_sha256) DO UPDATE SET tenant = EXCLUDED.tenant",
                (key_digest(api_key), tenant),
            )

    async def tenant_for(self, api_key: str) -> str | None:
        digest = key_digest(api_key)
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT tenant FROM api_keys WHERE key_sha256 = %s AND revoked_at IS NULL",
                (digest,),
            )
            row = await cur.fetchone()
        tenant = row[0] if row else None
        self._cache[digest] = (tenant, time.monotonic() + KEY_CACHE_TTL_S)
        return tenant


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
        expires = int(expires_text)
        mac = _unb64(mac_b64)
    except (ValueError, UnicodeDecodeError):
        return None
    payload = f"{doc_id}|{tenant}|{expires}".encode()
    good = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:18]
    if not hmac.compare_digest(mac, good) or expires < time.time():
        return None
    return tenant


TenantResolver = Callable[[str], Awaitable[str | None]]
