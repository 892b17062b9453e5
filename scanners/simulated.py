"""A simulated vendor: configurable latency and verdict, for tests, demos and load."""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path

from scanners.base import VERDICTS, ScanJob, Scanner, Verdict

RATE_PER_CONSUMER = 20.0


def sized_inflight(latency_ms: float) -> int:
    """Little's law: requests in flight = rate x time each; e.g. 60 for 3000 ms, 2 for 0."""
    return max(2, min(128, math.ceil(RATE_PER_CONSUMER * latency_ms / 1000)))


class Simulated(Scanner):
    """Answers after a random latency with a verdict drawn from a mix.

    Options: ``latency_ms`` (mean, default 200), ``jitter_ms`` (uniform +/-, default 0),
    ``verdict`` (a fixed verdict, default ``clean``), ``malicious_rate`` (0..1, overrides
    ``verdict`` per scan when set), ``hang`` (``1``: never answer, to test deadlines),
    ``crash`` (``exit``: the engine process dies at once; ``memory``: it allocates until its
    memory ceiling stops it; to test isolation; only with a ceiling), ``vendor``,
    ``deadline_s`` (default 30), ``inflight`` (default sized for the latency: enough in flight
    for ``RATE_PER_CONSUMER`` requests/s per consumer at the mean latency, 2 to 128).
    """

    name = "simulated"
    vendor = "IntelliDox Simulations"
    version = "1"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.latency_ms = self.option("latency_ms", 200.0, float)
        self.jitter_ms = self.option("jitter_ms", 0.0, float)
        self.verdict = self.option("verdict", "clean")
        if self.verdict not in VERDICTS:
            raise ValueError(f"simulated: verdict {self.verdict!r} is not one of {VERDICTS}")
        self.malicious_rate = self.option("malicious_rate", -1.0, float)
        self.hang = self.option("hang", "0") == "1"
        self.crash = self.option("crash", "")
        if self.crash not in ("", "exit", "memory"):
            raise ValueError(f"simulated: crash {self.crash!r} is not exit or memory")
        self.deadline_s = self.option("deadline_s", 30.0, float)
        self.inflight = self.option("inflight", sized_inflight(self.latency_ms), int)

    def signatures_version(self) -> str:
        return "simulated"

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        if self.crash == "exit":
            os._exit(70)  # as a segfaulting parser would: no cleanup, no answer
        if self.crash == "memory":
            hog = [b"\1" * (64 << 20) for _ in iter(int, 1)]  # touched; until MemoryError
            del hog
        if self.hang:
            time.sleep(10**6)
        delay = self.latency_ms + random.uniform(-self.jitter_ms, self.jitter_ms)
        time.sleep(max(0.0, delay) / 1000)
        verdict = self.verdict
        if self.malicious_rate >= 0:
            verdict = "malicious" if random.random() < self.malicious_rate else "clean"
        return Verdict(verdict, f"simulated {verdict} after {delay:.0f} ms")
