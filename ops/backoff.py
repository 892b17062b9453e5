"""One retry-with-backoff for clients: exponential, jittered, bounded, honouring Retry-After.

A failure is retried only when it is :class:`Transient` (the caller decides: a refused
connection, 429, 503, another 5xx).  The n-th retry waits a random time between half and all
of ``base_s * 2**(n-1)`` (capped at ``cap_s``): clients that failed together do not come back
together, and none hammers.  A server's ``Retry-After`` is a floor, not a hint: the wait is at
least that long (plus up to 10 % so a herd still spreads out); one longer than ``cap_s`` is
not waited for at all, the failure is final.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class Transient(Exception):
    """A failure worth another try (after ``retry_after_s`` when the server said so)."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class GaveUp(Exception):
    """Every try failed with a transient error (or the server asked for too long a wait)."""


@dataclass(frozen=True)
class Backoff:
    attempts: int = 6  # tries in all: 1 means no retry
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(
        self, retry: int, retry_after_s: float | None, rand: Callable[[], float] = random.random
    ) -> float | None:
        """Seconds before retry number ``retry`` (1-based); None: do not retry."""
        if retry_after_s is not None:
            if retry_after_s > self.cap_s:
                return None
            return retry_after_s * (1 + 0.1 * rand())
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (retry - 1))
        return ceiling * (0.5 + 0.5 * rand())


def transient_status(status: int) -> bool:
    """HTTP answers a later try may not get: timeouts, too many requests, server errors
    (but not 501 or 505, which will not change)."""
    return status in (408, 429) or (status >= 500 and status not in (501, 505))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    policy: Backoff,
    on_retry: Callable[[int, float, Transient], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or ``policy`` says stop."""
    for number in range(1, policy.attempts + 1):
        try:
            return await attempt()
        except Transient as exc:
            delay = policy.delay(number, exc.retry_after_s, rand)
            if number == policy.attempts or delay is None:
                raise GaveUp(f"{exc} (gave up after {number} tries)") from exc
            if on_retry is not None:
                on_retry(number, delay, exc)
            await sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
