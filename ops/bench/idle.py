"""Idle cost: the CPU the throughput bench's stack burns with no document in sight.

Run with the services up (``make run`` or ``intellidox up``); it starts the same stack as
:mod:`ops.bench.throughput` (worker, storage events, 20 instant simulated scanners, gateway)
on fresh topics, lets it settle, then measures for ``--seconds``:

    .venv/bin/python -m ops.bench.idle --seconds 30

Every figure is a share of one core.  At a steady rate of r documents a second, the machine's
idle share s costs s / r seconds per document on top of the work itself (0.27 cores at 10
documents/s: 27 ms per document), which is why idle long polls and timers matter here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from ops.bench.throughput import SCANNERS, Window, cpu_by_role
from ops.settings import get_settings
from ops.stack import Stack

SETTLE_S = 15.0  # joins, rebalances, first heartbeats and JITs are not idle


async def run(seconds: float) -> None:
    logs = Path(tempfile.mkdtemp(prefix="intellidox-idle-"))
    stack = Stack.create(get_settings(), logs)
    try:
        stack.start_all(SCANNERS)
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; logs {logs}")
        await asyncio.sleep(SETTLE_S)
        roles_before, before = cpu_by_role(), Window.now()
        await asyncio.sleep(seconds)
        after, roles_after = Window.now(), cpu_by_role()
    finally:
        stack.close()
    wall = after.wall - before.wall
    print(f"idle for {wall:.0f} s: the machine {(after.busy - before.busy) / wall:.3f} cores busy")
    used = {r: roles_after[r] - roles_before.get(r, 0.0) for r in roles_after}
    for role, cpu in sorted(used.items(), key=lambda item: -item[1]):
        print(f"  {role}: {cpu / wall * 100:.1f} % of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    asyncio.run(run(parser.parse_args().seconds))


if __name__ == "__main__":
    main()
