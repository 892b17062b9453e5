"""One retry-with-backoff for clients: exponential, jittered, bounded, honouring Retry-After.

A failure is retried only when it is :class:`Transient` (the caller decides: a refused
connection, 429, 503, another 5xx).  The n-th retry waits a random time between half and all
of ``base_s * 2**(n-1)`` (capped at ``cap_s``): clients that failed together do not come back
together, and none hammers.  A server's ``Retry-After`` is a floor, not a hint: the wait is at
least that long (plus up to 10 % so a herd still spreads out); one longer than ``cap_s`` is
not waited for at all, the failure is final.

Every retry loop of the pipeline runs through :func:`retrying` (coroutines) or
:func:`retrying_sync` (threads); both drive the same :class:`Tries`.  A caller names which
failures are worth another try and under which policy (``rules``): a store outage may be waited
out without a limit on tries (``attempts=None``), for a time (``window_s``) or forever, while
any other failure gets a few tries.  A failure no rule names (or one whose rule has no policy:
``(DownloadError, None)`` before ``(OSError, …)``) is raised at once, unchanged.
Callers inject ``sleep``, ``clock`` and ``rand``; tests run the real loop in no time.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class Transient(Exception):
    """A failure worth another try (after ``retry_after_s`` when the server said so)."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class GaveUp(Exception):
    """Every try failed with a transient error (or the server asked for too long a wait).
    ``last`` is the last failure, ``tries`` how many tries there were."""

    def __init__(self, message: str, tries: int = 0, last: BaseException | None = None) -> None:
        super().__init__(message)
        self.tries = tries
        self.last = last


@dataclass(frozen=True)
class Backoff:
    attempts: int | None = 6  # tries in all: 1 means no retry; None: no limit (see window_s)
    base_s: float = 0.5
    cap_s: float = 30.0
    window_s: float | None = None  # no retry after this long since the first try; None: ever

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


Failures = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)  # exception types, or a test of the failure (``is_storage_outage``)
Rule = tuple[Failures, Backoff | None]  # these failures retried under this policy; None: never


class Tries:
    """One operation's tries so far: which rule a failure falls under, and how long to wait.

    Each rule counts its own tries; ``window_s`` counts from the first try (``clock``)."""

    def __init__(
        self,
        rules: Sequence[Rule],
        clock: Clock = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.rules = rules
        self.clock, self.rand = clock, rand
        self.started = clock()
        self.tries = 0
        self._counts = [0] * len(rules)

    def wait_after(self, exc: BaseException) -> float | None:
        """Seconds to wait before the next try; None when no rule retries ``exc`` (raise it
        as it is); raises :class:`GaveUp` (from ``exc``) when its rule says stop."""
        self.tries += 1
        index = next((i for i, (kinds, _) in enumerate(self.rules) if _matches(kinds, exc)), None)
        policy = None if index is None else self.rules[index][1]
        if index is None or policy is None:
            return None
        self._counts[index] += 1
        retry_after_s = exc.retry_after_s if isinstance(exc, Transient) else None
        delay = policy.delay(self._counts[index], retry_after_s, self.rand)
        left = None if policy.window_s is None else self.started + policy.window_s - self.clock()
        spent = policy.attempts is not None and self._counts[index] >= policy.attempts
        if delay is None or spent or (left is not None and left <= 0):
            raise GaveUp(f"{exc} (gave up after {self.tries} tries)", self.tries, exc) from exc
        return delay if left is None else min(delay, left)  # the last try at the window's end


OnRetry = Callable[[int, float, BaseException], None]


def _matches(kinds: Failures, exc: BaseException) -> bool:
    if isinstance(kinds, type | tuple):
        return isinstance(exc, kinds)
    return kinds(exc)


def _rules(policy: Backoff | Sequence[Rule]) -> Sequence[Rule]:
    return [(Transient, policy)] if isinstance(policy, Backoff) else policy


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    policy: Backoff | Sequence[Rule],
    on_retry: OnRetry | None = None,
    sleep: Sleep | None = None,
    rand: Callable[[], float] = random.random,
    clock: Clock = time.monotonic,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or ``policy`` says stop.  A bare
    :class:`Backoff` retries :class:`Transient` failures; rules name other failures.
    ``sleep`` is ``asyncio.sleep`` as it is at the time of the call."""
    tries = Tries(_rules(policy), clock, rand)
    while True:
        try:
            return await attempt()
        except Exception as exc:
            delay = _pause(tries, exc, on_retry)
            if delay is None:
                raise
        await (sleep or asyncio.sleep)(delay)


def retrying_sync(
    attempt: Callable[[], T],
    policy: Backoff | Sequence[Rule],
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], None] | None = None,
    rand: Callable[[], float] = random.random,
    clock: Clock = time.monotonic,
) -> T:
    """:func:`retrying` for a thread: the same rules, a blocking ``sleep``."""
    tries = Tries(_rules(policy), clock, rand)
    while True:
        try:
            return attempt()
        except Exception as exc:
            delay = _pause(tries, exc, on_retry)
            if delay is None:
                raise
        (sleep or time.sleep)(delay)


def _pause(tries: Tries, exc: Exception, on_retry: OnRetry | None) -> float | None:
    """How long to wait before the next try (told to ``on_retry``); None: give up."""
    delay = tries.wait_after(exc)
    if delay is not None and on_retry is not None:
        on_retry(tries.tries, delay, exc)
    return delay
