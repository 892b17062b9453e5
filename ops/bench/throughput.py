"""Throughput: a closed loop of browsers, then a steady rate, with the machine's CPU per document.

Run with the services up (``make run`` or ``intellidox up``); it starts its own worker,
scanners (20 instant simulated vendors) and gateway on fresh topics:

    .venv/bin/python -m ops.bench.throughput                    # closed loop, then 10 docs/s
    .venv/bin/python -m ops.bench.throughput --clients 64 --docs 300 --rate 10 --rate-docs 300

Closed loop: ``--clients`` clients, each doing request-upload → PUT → confirm → SSE until
``done`` with a 10 KB file, again and again, ``--docs`` documents in all.  Reported: documents/s,
machine CPU per document (every process on the box, the JVMs included, from /proc/stat), and
confirm → done percentiles under that load.  Steady rate: documents offered at ``--rate`` per
second; confirm → first SSE status and confirm → done percentiles.  ``--workers 2`` runs a
second worker process in the same group and prints the partitions each member holds
(scale-out check).  Then, unless ``--skip`` names them, the 1 GiB comparison
(:mod:`ops.bench.bigfile`) and the SSE capacity (:mod:`ops.bench.sse_capacity`) on stacks of
their own, so one command prints every figure of issue 10's table:

    .venv/bin/python -m ops.bench.throughput --skip bigfile,sse   # the two loads only
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
from confluent_kafka.admin import AdminClient

from ops.bench import bigfile, sse_capacity
from ops.bench.common import percentile
from ops.bench.load import Doc, Load, one_document
from ops.bench.speed import SpeedProbe
from ops.bootstrap.acls import WORKER_GROUP
from ops.kafka import client_config
from ops.settings import Settings, get_settings
from ops.stack import Stack

SCANNERS = [f"inst{i:02d}:simulated?latency_ms=0&vendor=Instant {i}" for i in range(20)]
DOC_SIZE = 10 * 1024


@dataclass(frozen=True)
class Window:
    """Machine-wide CPU seconds (user + system of every process) over a stretch of time."""

    wall: float
    busy: float

    @classmethod
    def now(cls) -> Window:
        cpu = psutil.cpu_times()
        busy = sum(getattr(cpu, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))
        return cls(time.monotonic(), busy)


ROLES = (
    ("kafka", "kafka.Kafka"),
    ("cassandra", "CassandraDaemon"),
    ("postgres", "postgres"),
    ("seaweedfs", "weed"),
    ("clamd", "clamd"),
    ("worker", "ops.cli worker"),
    ("gateway", "ops.cli gateway"),
    ("storage events", "ops.cli storage-events"),
    ("scanners", "ops.cli scanner"),
    ("bench client", "ops.bench.throughput"),
)


def _own_role(proc: psutil.Process) -> str | None:
    line = " ".join(proc.cmdline())
    return next((role for role, mark in ROLES if mark in line), None)


def _role(proc: psutil.Process) -> str:
    """The role of the process or of its nearest ancestor with one: the extraction
    sandboxes are the worker's, the engines' isolated children the scanners'."""
    try:
        for candidate in (proc, *proc.parents()):
            role = _own_role(candidate)
            if role is not None:
                return role
    except psutil.Error:
        pass
    return "other"


def cpu_by_role() -> dict[str, float]:
    """CPU seconds so far per role, children included, running or ended (the extractor
    sandboxes count for the worker, the engine processes for the scanners)."""
    totals: dict[str, float] = {}
    for proc in psutil.process_iter():
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        role = _role(proc)
        used = t.user + t.system + t.children_user + t.children_system
        totals[role] = totals.get(role, 0.0) + used
    return totals


def breakdown(before: dict[str, float], after: dict[str, float], docs: int) -> str:
    used = {r: after.get(r, 0.0) - before.get(r, 0.0) for r in after}
    parts = sorted(((v, r) for r, v in used.items() if v > 0.05 * docs / 1000), reverse=True)
    return ", ".join(f"{r} {v / docs * 1000:.1f}" for v, r in parts)


def _ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {percentile(values, 50) * 1000:.0f} ms, p90 {percentile(values, 90) * 1000:.0f} ms, "
        f"p99 {percentile(values, 99) * 1000:.0f} ms"
    )


def _latencies(docs: list[Doc]) -> tuple[list[float], list[float]]:
    done = [d.done_at - d.confirmed_at for d in docs if d.done_at and d.confirmed_at]
    first = [
        d.first_status_at - d.confirmed_at for d in docs if d.first_status_at and d.confirmed_at
    ]
    return done, first


SETTLE_S = 2.0  # after the warm-up: its last documents' verdicts are projected


async def closed_loop(session: aiohttp.ClientSession, load: Load, clients: int, docs: int) -> None:
    remaining = iter(range(docs))

    async def client() -> None:
        for index in remaining:
            doc = Doc(index)
            load.docs.append(doc)
            await one_document(session, load, doc, DOC_SIZE)

    await asyncio.gather(*(client() for _ in range(clients)))


async def steady(session: aiohttp.ClientSession, load: Load, rate: float, docs: int) -> None:
    tasks = []
    for index in range(docs):
        doc = Doc(index)
        load.docs.append(doc)
        tasks.append(asyncio.create_task(one_document(session, load, doc, DOC_SIZE)))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)


async def measure_closed(stack: Stack, clients: int, docs: int) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await warm_up(stack, session)
        load = Load(stack.url, stack.settings.dev_api_key)
        with SpeedProbe() as probe:
            roles_before, before = cpu_by_role(), Window.now()
            await closed_loop(session, load, clients, docs)
            after, roles_after = Window.now(), cpu_by_role()
    wall, busy = after.wall - before.wall, after.busy - before.busy - probe.cpu_s
    done, _ = _latencies(load.docs)
    print(
        f"closed loop, {clients} clients, {docs} docs of 10 KB, {len(SCANNERS)} instant scanners: "
        f"{docs / wall:.1f} documents/s; machine CPU {busy / docs * 1000:.0f} ms per document "
        f"({busy / wall:.2f} of {os.cpu_count()} cores busy); confirm → done {_ms(done)}; "
        f"500s: {load.server_errors()}",
        flush=True,
    )
    print(f"  CPU ms per document by process: {breakdown(roles_before, roles_after, docs)}")
    print(f"  {_at_reference(probe, busy, docs)}")


def _at_reference(probe: SpeedProbe, busy: float, docs: int) -> str:
    cpu_ms = probe.at_reference(busy) / docs * 1000
    return f"{probe.describe()}: {cpu_ms:.0f} ms per document at the reference speed"


async def warm_up(stack: Stack, session: aiohttp.ClientSession) -> None:
    """Twenty documents first: connections, prepared statements, JITs, and a worker still
    joining its group.  Measured from a cold start, a steady run's first ~8 s were a
    backlog draining (done up to 2.6 s, then 0.1 to 0.2 s), which is start-up, not the
    steady state."""
    await closed_loop(session, Load(stack.url, stack.settings.dev_api_key), 8, 20)
    await asyncio.sleep(SETTLE_S)


async def measure_steady(stack: Stack, rate: float, docs: int) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await warm_up(stack, session)
        load = Load(stack.url, stack.settings.dev_api_key)
        with SpeedProbe() as probe:
            before = Window.now()
            await steady(session, load, rate, docs)
            after = Window.now()
    done, first = _latencies(load.docs)
    busy = after.busy - before.busy - probe.cpu_s
    print(
        f"steady {rate:g} docs/s, {docs} docs: confirm → first SSE status {_ms(first)}; "
        f"confirm → done {_ms(done)}; machine CPU {busy / docs * 1000:.0f} ms per document",
        flush=True,
    )
    print(f"  {_at_reference(probe, busy, docs)}")


def worker_partitions(settings: Settings) -> list[int]:
    """How many partitions each member of the worker's consumer group holds."""
    group = settings.topic_prefix + WORKER_GROUP
    admin = AdminClient(client_config(settings))
    described = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return sorted(len(m.assignment.topic_partitions) for m in described.members)


async def loads(args: argparse.Namespace) -> None:
    logs = Path(tempfile.mkdtemp(prefix="intellidox-throughput-"))
    stack = Stack.create(get_settings(), logs)
    try:
        stack.start_all(SCANNERS)
        for extra in range(2, args.workers + 1):
            stack.start_worker(f"worker{extra}")
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; logs {logs}")
        await asyncio.sleep(3)  # every scanner's heartbeat seen by the worker
        if args.workers > 1:
            held = await asyncio.to_thread(worker_partitions, stack.settings)
            shares = " + ".join(map(str, held))
            print(f"worker group: {len(held)} members holding {shares} partitions")
        if args.docs:
            await measure_closed(stack, args.clients, args.docs)
        if args.rate_docs:
            await measure_steady(stack, args.rate, args.rate_docs)
    finally:
        stack.close()


async def run(args: argparse.Namespace) -> None:
    await loads(args)
    if "bigfile" not in args.skip:
        print("1 GiB path:", flush=True)
        await bigfile.run(args.bigfile_mib, args.bigfile_rounds)
    if "sse" not in args.skip:
        print("SSE capacity:", flush=True)
        await sse_capacity.run(sse_capacity.arguments([]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--rate-docs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1, help="worker processes in the group")
    parser.add_argument("--bigfile-mib", type=int, default=1024)
    parser.add_argument("--bigfile-rounds", type=int, default=3)
    parser.add_argument(
        "--skip",
        type=lambda text: set(text.split(",")),
        default=set(),
        help="comma-separated parts not to run: bigfile, sse",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
