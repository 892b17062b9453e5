"""Retry with backoff, without services: delays, jitter, Retry-After, bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from ops.backoff import (
    Backoff,
    GaveUp,
    Transient,
    parse_retry_after,
    retrying,
    retrying_sync,
    transient_status,
)


def test_delays_double_with_jitter_between_half_and_all_up_to_the_cap() -> None:
    policy = Backoff(attempts=10, base_s=0.5, cap_s=4.0)
    assert [policy.delay(n, None, rand=lambda: 1.0) for n in range(1, 6)] == [0.5, 1, 2, 4, 4]
    assert [policy.delay(n, None, rand=lambda: 0.0) for n in range(1, 6)] == [0.25, 0.5, 1, 2, 2]


def test_retry_after_is_a_floor_and_one_beyond_the_cap_is_not_waited_for() -> None:
    policy = Backoff(cap_s=30.0)
    assert policy.delay(1, 3.0, rand=lambda: 0.0) == 3.0
    assert policy.delay(1, 3.0, rand=lambda: 1.0) == pytest.approx(3.3)
    assert policy.delay(4, 1.0, rand=lambda: 0.5) == pytest.approx(1.05)  # not 2**3 * base
    assert policy.delay(1, 3600.0) is None


def test_transient_statuses() -> None:
    assert [
        s
        for s in (400, 401, 404, 408, 409, 429, 500, 501, 502, 503, 504, 505)
        if transient_status(s)
    ] == [408, 429, 500, 502, 503, 504]


def test_retry_after_as_seconds_or_an_http_date() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == 90.0


async def test_retrying_sleeps_between_tries_and_returns_the_first_success() -> None:
    slept: list[float] = []
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Transient("503", retry_after_s=2.0 if calls == 2 else None)
        return "ok"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result = await retrying(flaky, Backoff(attempts=5, base_s=1.0), sleep=sleep, rand=lambda: 0.0)
    assert result == "ok" and calls == 3 and slept == [0.5, 2.0]


async def test_retrying_is_bounded_and_other_errors_are_not_retried() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise Transient("connection refused")

    async def no_sleep(_seconds: float) -> None:
        return None

    with pytest.raises(GaveUp, match="gave up after 3 tries"):
        await retrying(down, Backoff(attempts=3), sleep=no_sleep)
    assert calls == 3

    async def refused() -> None:
        raise ValueError("401")

    with pytest.raises(ValueError):
        await retrying(refused, Backoff(attempts=3), sleep=no_sleep)


async def test_a_retry_after_beyond_the_cap_gives_up_at_once() -> None:
    calls = 0

    async def later() -> None:
        nonlocal calls
        calls += 1
        raise Transient("429", retry_after_s=600.0)

    with pytest.raises(GaveUp):
        await retrying(later, Backoff(attempts=5, cap_s=30.0))
    assert calls == 1


class FakeTime:
    """A clock that only sleeping moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Failing:
    """Raises ``errors`` one per call, then answers."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors, self.calls = errors, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_each_rule_counts_its_own_tries_and_an_outage_has_no_limit() -> None:
    """Outages are waited out (20 of them), other failures get their few tries."""
    time_ = FakeTime()
    attempt = Failing([ConnectionError("away")] * 20 + [ValueError("bad"), KeyError("k")])
    outage, other = Backoff(attempts=None, base_s=0.1, cap_s=1.0), Backoff(attempts=3, base_s=0.1)
    rules = [(ConnectionError, outage), (Exception, other)]
    result = retrying_sync(attempt, rules, sleep=time_.sleep, rand=lambda: 1.0)
    assert result == "done" and attempt.calls == 23
    assert time_.slept[:5] == [0.1, 0.2, 0.4, 0.8, 1.0] and time_.slept[-2:] == [0.1, 0.2]


def test_the_window_ends_the_tries_and_the_last_one_is_at_its_end() -> None:
    time_ = FakeTime()
    outage = Backoff(attempts=None, base_s=1.0, cap_s=4.0, window_s=10.0)
    with pytest.raises(GaveUp, match="gave up after 5 tries") as gave_up:
        retrying_sync(
            Failing([OSError("refused")] * 100),
            [(OSError, outage)],
            sleep=time_.sleep,
            rand=lambda: 1.0,
            clock=lambda: time_.now,
        )
    assert time_.slept == [1.0, 2.0, 4.0, 3.0]  # 3.0: cut to the window's end
    assert gave_up.value.tries == 5 and isinstance(gave_up.value.last, OSError)
    assert isinstance(gave_up.value.__cause__, OSError)


def test_a_rule_without_a_policy_raises_at_once_before_a_broader_rule_retries() -> None:
    class Refused(OSError):
        pass

    attempt = Failing([Refused("403")])
    with pytest.raises(Refused):
        retrying_sync(attempt, [(Refused, None), (OSError, Backoff())], sleep=FakeTime().sleep)
    assert attempt.calls == 1


def test_on_retry_hears_of_each_retry_with_its_pause() -> None:
    heard: list[tuple[int, float, str]] = []

    def retried(number: int, pause: float, exc: BaseException) -> None:
        heard.append((number, pause, str(exc)))

    attempt = Failing([Transient("503"), Transient("503")])
    policy = Backoff(attempts=3, base_s=1.0)
    retrying_sync(attempt, policy, retried, sleep=FakeTime().sleep, rand=lambda: 0.0)
    assert heard == [(1, 0.5, "503"), (2, 1.0, "503")]
