"""The fault suite: kill each part mid-run under a steady stream of documents, then audit.

Run with the services up (``make run`` or ``intellidox up``); it starts its own worker,
scanners (10 simulated vendors, 300 ± 250 ms) and gateway on fresh topics for each fault:

    .venv/bin/python -m ops.bench.faults                       # every fault, 300 documents each
    .venv/bin/python -m ops.bench.faults --faults worker,kafka --docs 120 --rate 4

Faults of the backing services (kafka, cassandra, postgres, seaweedfs) SIGKILL the shared
local service and start it again: do not run them while anything else uses the runtime.
For each fault it prints one Markdown row: documents lost, verdicts lost or duplicated (on the
topic and in the projections), false ``timeout``/``error`` verdicts, 5xx answers (500s; the
honest 503s are counted apart), and the time from the component's return to the first
document finishing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ops.bench.audit import Audit, audit
from ops.bench.load import Load, run_load
from ops.services import SERVICE_NAMES, build_services
from ops.services.runtime import read_pid, start
from ops.settings import Settings, get_settings
from ops.stack import Stack

SCANNERS = [f"sim{i:02d}:simulated?latency_ms=300&jitter_ms=250&vendor=Sim {i}" for i in range(10)]
OUTAGE_S = {"kafka": 30.0, "cassandra": 60.0, "postgres": 30.0, "seaweedfs": 30.0}
OWN = ("worker", "scanners", "gateway")
DRAIN_S = 240.0  # after the last document is offered, how long documents may take to finish


@dataclass(frozen=True)
class Outcome:
    fault: str
    down_s: float
    audit: Audit
    recovery_s: float | None


def kill_service(settings: Settings, name: str) -> None:
    """SIGKILL a backing service's whole process group (a crash, not a shutdown)."""
    service = next(s for s in build_services(settings) if s.name == name)
    pid = read_pid(service)
    if pid is None:
        raise RuntimeError(f"{name} is not running; start it with `intellidox up {name}`")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    service.pid_file.unlink(missing_ok=True)


def revive_service(settings: Settings, name: str) -> None:
    service = next(s for s in build_services(settings) if s.name == name)
    start(service)  # waits until healthy and bootstraps (idempotent)


async def inject(stack: Stack, fault: str, down_s: float) -> float:
    """Kill, wait, bring back; returns the monotonic time the component was back."""
    if fault in OWN:
        stack.kill(fault)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(stack.restart, fault)
    else:
        await asyncio.to_thread(kill_service, stack.settings, fault)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(revive_service, stack.settings, fault)
    return time.monotonic()


async def run_fault(fault: str, docs: int, rate: float, down_s: float | None = None) -> Outcome:
    """One fault on a stack of its own; the fault strikes a third of the way in."""
    down = OUTAGE_S.get(fault, 3.0) if down_s is None else down_s
    logs = Path(tempfile.mkdtemp(prefix=f"intellidox-fault-{fault}-"))
    stack = Stack.create(get_settings(), logs)
    try:
        stack.start_all(SCANNERS)
        await asyncio.sleep(3)  # every scanner's heartbeat seen by the worker
        # Every browser has connections of its own: no shared pool cap (aiohttp's default 100
        # would make open streams starve new uploads in the client, not in IntelliDox).
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            load = Load(stack.url, stack.settings.dev_api_key)
            feeder = asyncio.create_task(run_load(session, load, docs, rate))
            await asyncio.sleep(docs / rate / 3)
            back_at = await inject(stack, fault, down)
            tasks = await feeder
            _, unfinished = await asyncio.wait(tasks, timeout=DRAIN_S)
            for task in unfinished:  # counted as lost: they did not finish within the drain
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            report_client_failures(tasks)
            result = await audit(session, load, stack.settings, [s.split(":")[0] for s in SCANNERS])
        finished = sorted(d.done_at for d in load.docs if d.done_at and d.done_at >= back_at)
        recovery = finished[0] - back_at if finished else None
        return Outcome(fault, down, result, recovery)
    finally:
        stack.close()


def report_client_failures(tasks: list[asyncio.Task[None]]) -> None:
    """A document whose client gave up is counted as lost; say why on stderr."""
    failed = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
    if failed:
        print(f"{len(failed)} clients failed; first: {failed[0]!r}", file=sys.stderr)


HEADER = (
    "| fault | down | docs | docs lost | verdicts lost (topic / projection) | duplicated on topic "
    "| stream repeats | false timeout/error | 500s | 503s | back → first done |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def row(outcome: Outcome) -> str:
    a = outcome.audit
    recovery = "n/a" if outcome.recovery_s is None else f"{outcome.recovery_s:.1f} s"
    return (
        f"| {outcome.fault} | {outcome.down_s:.0f} s | {a.documents} | {a.documents_lost} "
        f"| {a.topic_verdicts_lost} / {a.projection_verdicts_lost} "
        f"| {a.topic_verdicts_duplicated} | {a.stream_repeats} | {a.false_verdicts} "
        f"| {a.server_errors} | {a.unavailable} | {recovery} |"
    )


async def run_all(faults: list[str], docs: int, rate: float) -> None:
    print(f"fault suite: {docs} documents per fault at {rate}/s, {len(SCANNERS)} simulated")
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at start\n")
    print(HEADER, flush=True)
    for fault in faults:
        print(row(await run_fault(fault, docs, rate)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default=",".join([*OWN, *SERVICE_NAMES[:4]]))
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--rate", type=float, default=5.0)
    args = parser.parse_args()
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = sorted(set(faults) - {*OWN, *OUTAGE_S})
    if unknown:
        raise SystemExit(f"unknown fault(s): {', '.join(unknown)}; known: {[*OWN, *OUTAGE_S]}")
    asyncio.run(run_all(faults, args.docs, args.rate))


if __name__ == "__main__":
    main()
