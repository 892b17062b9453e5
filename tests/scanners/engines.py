"""Engines for runner tests only (importable, so an engine process can build them)."""

from __future__ import annotations

import time
from pathlib import Path

from scanners.base import ScanJob, Scanner, TransientEngineError, Verdict


class Raises(Scanner):
    """Raises on every file. Options: none."""

    name = "raises"
    vendor = "Tests"

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        raise RuntimeError("engine fell over")


class ReadsFile(Scanner):
    """Answers with the file's first bytes, to prove the engine process sees the download."""

    name = "reads-file"
    vendor = "Tests"

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        return Verdict("clean", path.read_bytes()[:20].decode())


class Sleeps(Scanner):
    """Sleeps as many seconds as the file's first word says (at most option ``cap``), then
    answers clean: requests that finish out of order, on purpose."""

    name = "sleeps"
    vendor = "Tests"

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        seconds = min(float(path.read_text().split()[0]), float(self.options.get("cap", "inf")))
        time.sleep(seconds)
        return Verdict("clean", f"slept {seconds:g}s")


class BusyTwice(Scanner):
    """Busy (a TransientEngineError) on its first two scans in this process, then clean."""

    name = "busy-twice"
    vendor = "Tests"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.calls = 0

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        self.calls += 1
        if self.calls <= 2:
            raise TransientEngineError("the daemon is busy")
        return Verdict("clean", f"answered on try {self.calls}")


class SaysConnectionError(Scanner):
    """Fails for good, with a message that merely reads like a transient one."""

    name = "says-connection-error"
    vendor = "Tests"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.calls = 0

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        self.calls += 1
        raise RuntimeError(f"ConnectionError: not really (call {self.calls})")
