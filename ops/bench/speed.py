"""How fast the cores run right now, so CPU figures of different runs can be compared.

On a shared VM the same work costs a different CPU time from minute to minute.  On the 2-core
box of 2026-12-05 a fixed pure-Python loop took 283 to 451 ms, five runs within 20 s of an idle
machine, and a bench's "CPU ms per document" swung with it: the same code gave 101 and 162 ms
a document two minutes apart, every process of the pipeline higher by the same share.

:class:`SpeedProbe` runs a fixed loop of a few milliseconds in a process of its own every
half second, beside the load, and keeps the CPU time each loop took.  Dividing a CPU figure
by ``median loop / REFERENCE_LOOP_S`` states it at a reference speed: runs on a slower minute
are scaled down, on a faster one up.  The probe's own CPU (about 1 % of a core) is reported
so the caller can leave it out of the machine's total.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
from types import TracebackType

import psutil

LOOP = 50_000  # iterations: ~5 ms of CPU on this box
PERIOD_S = 0.5
# The loop's CPU time on this box when its host was quiet (the fastest minute seen on
# 2026-12-05); the figures "at the reference speed" are what a run would cost then.
REFERENCE_LOOP_S = 0.0047

_PROBE = f"""
import sys, time
while True:
    start = time.process_time()
    total = 0
    for i in range({LOOP}):
        total += i * i
    sys.stdout.write(f"{{time.process_time() - start:.6f}}\\n")
    sys.stdout.flush()
    time.sleep({PERIOD_S})
"""


class SpeedProbe:
    """``with SpeedProbe() as probe: ...``; then ``probe.factor`` (1.0: the reference
    speed, 1.3: every CPU second here is worth 1/1.3 of one at the reference) and
    ``probe.cpu_s`` (what the probe itself used)."""

    def __init__(self) -> None:
        self.loops: list[float] = []
        self.cpu_s = 0.0
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> SpeedProbe:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _PROBE], stdout=subprocess.PIPE, text=True
        )
        self._reader = threading.Thread(target=self._read, args=(self._proc,), daemon=True)
        self._reader.start()
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.loops.append(float(line))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            times = psutil.Process(proc.pid).cpu_times()
            self.cpu_s = times.user + times.system
        except psutil.Error:
            pass
        proc.kill()
        proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def factor(self) -> float:
        if not self.loops:
            return 1.0
        return statistics.median(self.loops) / REFERENCE_LOOP_S

    def at_reference(self, cpu_s: float) -> float:
        """``cpu_s`` as it would have been at the reference speed."""
        return cpu_s / self.factor

    def describe(self) -> str:
        if not self.loops:
            return "speed probe: no loop finished"
        return (
            f"speed probe {statistics.median(self.loops) * 1000:.1f} ms a loop "
            f"({self.factor:.2f} of the reference's time, n={len(self.loops)})"
        )
