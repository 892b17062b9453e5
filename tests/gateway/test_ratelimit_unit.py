"""The limiter's logic without services: leases spent locally, empty buckets remembered,
one round trip at a time, failing open, and the limits a key ends up with."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from gateway.auth import Principal
from gateway.ratelimit import FAILED_OPEN, Leases, Limits, retry_after
from ops.settings import Settings


class Bucket:
    """An in-memory stand-in for take_tokens, on the test's clock."""

    def __init__(self, clock: list[float], per_s: float, burst: int) -> None:
        self.clock, self.tokens, self.at = clock, float(burst), clock[0]
        self.per_s, self.burst = per_s, burst
        self.calls = 0
        self.fail = False

    async def take(self, _bucket: str, per_s: float, burst: int, want: int) -> tuple[int, float]:
        self.calls += 1
        await asyncio.sleep(0)  # a round trip: others get to run meanwhile
        if self.fail:
            raise psycopg.OperationalError("connection refused")
        now = self.clock[0]
        self.tokens = min(burst, self.tokens + per_s * (now - self.at))
        self.at = now
        granted = min(want, int(self.tokens))
        self.tokens -= granted
        return granted, 0.0 if granted else (1 - self.tokens) / per_s


def _leases(bucket: Bucket, clock: list[float]) -> Leases:
    return Leases(bucket.take, window_s=0.1, ttl_s=1.0, clock=lambda: clock[0])


def test_a_lease_is_a_tenth_of_a_second_at_least_one_token_at_most_the_burst() -> None:
    leases = Leases(Bucket([0.0], 1, 1).take)
    assert leases.lease_size(1, 10) == 1
    assert leases.lease_size(200, 500) == 20
    assert leases.lease_size(200, 5) == 5


async def test_leased_tokens_are_spent_without_a_round_trip() -> None:
    clock = [0.0]
    bucket = Bucket(clock, per_s=100, burst=100)
    leases = _leases(bucket, clock)
    assert [await leases.acquire("b", 100, 100) for _ in range(25)] == [0.0] * 25
    assert bucket.calls == 3  # leases of 10


async def test_an_empty_bucket_is_remembered_until_its_next_token() -> None:
    clock = [0.0]
    bucket = Bucket(clock, per_s=2, burst=2)
    leases = _leases(bucket, clock)
    assert await leases.acquire("b", 2, 2) == 0.0
    assert await leases.acquire("b", 2, 2) == 0.0
    wait = await leases.acquire("b", 2, 2)
    assert wait == pytest.approx(0.5)
    calls = bucket.calls
    clock[0] = 0.3
    for _ in range(100):  # a flood: refused locally, no round trips
        assert await leases.acquire("b", 2, 2) == pytest.approx(0.2)
    assert bucket.calls == calls
    clock[0] = 0.5
    assert await leases.acquire("b", 2, 2) == 0.0


async def test_concurrent_requests_share_one_round_trip() -> None:
    clock = [0.0]
    bucket = Bucket(clock, per_s=50, burst=50)
    leases = _leases(bucket, clock)
    waits = await asyncio.gather(*(leases.acquire("b", 50, 50) for _ in range(5)))
    assert waits == [0.0] * 5 and bucket.calls == 1  # one lease of 5 tokens


async def test_an_unspent_lease_expires() -> None:
    clock = [0.0]
    bucket = Bucket(clock, per_s=100, burst=100)
    leases = _leases(bucket, clock)
    await leases.acquire("b", 100, 100)  # leases 10, spends 1
    clock[0] = 1.5
    await leases.acquire("b", 100, 100)
    assert bucket.calls == 2  # the 9 left over were not spent 1.5 s later


async def test_an_empty_bucket_does_not_refuse_another() -> None:
    clock = [0.0]
    buckets = {name: Bucket(clock, per_s=1, burst=1) for name in ("requests:a", "events:a")}

    async def take(name: str, per_s: float, burst: int, want: int) -> tuple[int, float]:
        return await buckets[name].take(name, per_s, burst, want)

    leases = Leases(take, clock=lambda: clock[0])
    assert await leases.acquire("requests:a", 1, 1) == 0.0
    assert await leases.acquire("requests:a", 1, 1) > 0
    assert await leases.acquire("events:a", 1, 1) == 0.0


async def test_postgres_away_fails_open_a_lease_at_a_time() -> None:
    clock = [0.0]
    bucket = Bucket(clock, per_s=10, burst=10)
    bucket.fail = True
    leases = _leases(bucket, clock)
    before = FAILED_OPEN._value.get()
    assert await leases.acquire("b", 10, 10) == 0.0
    assert await leases.acquire("b", 10, 10) == 0.0  # no lease left: asks again, fails open
    assert bucket.calls == 2 and FAILED_OPEN._value.get() == before + 2


def test_a_key_without_limits_gets_the_defaults_and_its_own_values_win() -> None:
    settings = Settings(rate_limit_per_s=50, rate_limit_burst=100, rate_limit_uploads=20)
    assert Limits.of(Principal("t"), settings) == Limits(50, 100, 20)
    custom = Principal("t", rate_per_s=2.5, rate_burst=5, max_uploads=0)
    assert Limits.of(custom, settings) == Limits(2.5, 5, 0)  # 0 uploads: uploads are off


def test_retry_after_is_whole_seconds_never_early() -> None:
    assert [retry_after(w) for w in (0.001, 0.5, 1.0, 1.01, 4.2)] == [1, 1, 1, 2, 5]
