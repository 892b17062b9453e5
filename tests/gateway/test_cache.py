"""The gateway's document cache: tenant-bound, only quiet documents, evicted, one read."""

from __future__ import annotations

import asyncio

from gateway.cache import QUIET_S, DocumentCache

ROW = {"id": "d1", "tenant": "acme", "process_status": "done"}


def test_only_quiet_documents_are_cached_and_only_for_their_tenant() -> None:
    cache = DocumentCache(ttl_s=60)
    cache.put(ROW, quiet_for_s=QUIET_S - 1)
    assert cache.get("acme", "d1") is None  # an event just happened: the projection may lag
    cache.put(ROW, quiet_for_s=QUIET_S + 1)
    assert cache.get("acme", "d1") == ROW
    assert cache.get("other", "d1") is None
    cache.evict("d1")
    assert cache.get("acme", "d1") is None


def test_a_zero_ttl_turns_the_cache_off() -> None:
    cache = DocumentCache(ttl_s=0)
    cache.put(ROW, quiet_for_s=float("inf"))
    assert cache.get("acme", "d1") is None


async def test_concurrent_misses_share_one_read() -> None:
    cache, reads = DocumentCache(ttl_s=1), 0

    async def read() -> dict[str, str]:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.05)
        return ROW

    rows = await asyncio.gather(*(cache.single_flight("acme", "d1", read) for _ in range(10)))
    assert reads == 1 and rows == [ROW] * 10
