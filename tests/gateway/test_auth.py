"""API keys and events tokens: bounded caches, canonical tokens, dev keys gone in production."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from gateway.auth import (
    MAX_TOKEN_TTL_S,
    ApiKeys,
    BoundedCache,
    _b64,
    key_digest,
    sign_events_token,
    verify_events_token,
)

SECRET = "a-signing-secret-for-tests"
DOC = "01a2201b-f3de-7a5e-bee7-78d5fb90a97a"


def test_a_fresh_token_names_its_tenant_and_only_for_its_document() -> None:
    token = sign_events_token(SECRET, DOC, "acme", 60)
    assert verify_events_token(SECRET, DOC, token) == "acme"
    assert verify_events_token(SECRET, DOC.replace("a", "b"), token) is None
    assert verify_events_token("another-secret", DOC, token) is None


def _forge(expires: str, tenant: str = "acme") -> str:
    import hashlib
    import hmac

    mac = hmac.new(SECRET.encode(), f"{DOC}|{tenant}|{expires}".encode(), hashlib.sha256)
    return f"{_b64(tenant.encode())}.{expires}.{_b64(mac.digest()[:18])}"


@pytest.mark.parametrize("shape", ["+{}", " {}", "{} ", "0{}", "{}\n", "{}_0"])
def test_an_expiry_that_is_not_canonical_digits_is_refused(shape: str) -> None:
    expires = str(int(time.time()) + 60)
    assert verify_events_token(SECRET, DOC, _forge(expires)) == "acme"  # the control
    assert verify_events_token(SECRET, DOC, _forge(shape.format(expires))) is None


def test_a_token_valid_for_a_century_is_refused_even_with_a_good_mac() -> None:
    century = str(int(time.time()) + 100 * 365 * 86400)
    assert verify_events_token(SECRET, DOC, _forge(century)) is None
    soon = str(int(time.time()) + MAX_TOKEN_TTL_S - 60)
    assert verify_events_token(SECRET, DOC, _forge(soon)) == "acme"


def test_the_key_cache_stays_bounded_under_random_keys() -> None:
    cache = BoundedCache(limit=100)
    for i in range(10_000):
        cache.put(f"unknown-{i}", None)
    assert len(cache) == 100
    assert cache.get("unknown-9999") == (None,) and cache.get("unknown-0") is None


@pytest.mark.integration
async def test_a_production_gateway_deletes_the_dev_key(pg_conninfo: str) -> None:
    pool = AsyncConnectionPool(pg_conninfo, min_size=1, max_size=2, open=False)
    await pool.open(wait=True)
    key = f"dev-key-{time.time_ns()}"
    try:
        keys = ApiKeys.create(pool)
        await keys.ensure(key, "dev")
        assert await keys.tenant_for(key) == "dev"
        await keys.revoke_dev_keys(key)
        assert await keys.tenant_for(key) is None
        with psycopg.connect(pg_conninfo) as conn:
            row: Any = conn.execute(
                "SELECT count(*) FROM api_keys WHERE tenant = 'dev' AND key_sha256 = %s",
                (key_digest(key),),
            ).fetchone()
        assert row[0] == 0
    finally:
        await pool.close()
