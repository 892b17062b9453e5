"""Worker failover: SIGKILL the worker under a steady stream of documents and time how long
until documents are processed again.

Two ways back: ``--mode restart`` starts the worker again ``--restart-after`` seconds later;
``--mode standby`` has a second worker running all along and starts nothing.  Each run is a
stack of its own (fresh topics, two fast simulated scanners).  A partition counts as resumed
at the first ``done`` (seen on SSE) of a document confirmed after the kill; ``first`` is the
first partition back, ``all`` the last one.  Prints one line per run and the medians::

    .venv/bin/python -m ops.bench.failover --mode restart --runs 3
    .venv/bin/python -m ops.bench.failover --mode standby --runs 3

A measurement, not a test: run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiokafka.partitioner import murmur2

from ops.bench.load import Doc, Load, run_load
from ops.settings import get_settings
from ops.stack import Stack, free_port

SCANNERS = ["fast-a:simulated?latency_ms=50", "fast-b:simulated?latency_ms=80"]
WARMUP_S = 8.0
DRAIN_S = 120.0


@dataclass(frozen=True)
class Run:
    first_s: float | None
    all_s: float | None
    baseline_s: float  # median confirm -> done before the kill
    unfinished: int  # documents that never got their done


def partition_of(doc_id: str, partitions: int) -> int:
    """The partition of a document's events (murmur2, as every producer here uses)."""
    return int(murmur2(doc_id.encode()) & 0x7FFFFFFF) % partitions


def resumed(docs: list[Doc], killed_at: float, partitions: int) -> tuple[float | None, ...]:
    """Seconds from the kill to the first and to the last partition processing again."""
    first_done: dict[int, float] = {}
    for doc in docs:
        if doc.confirmed_at is None or doc.done_at is None or doc.confirmed_at < killed_at:
            continue
        part = partition_of(doc.doc_id, partitions)
        first_done[part] = min(first_done.get(part, doc.done_at), doc.done_at)
    if len(first_done) < partitions:
        return None, None
    return min(first_done.values()) - killed_at, max(first_done.values()) - killed_at


def start_second_worker(stack: Stack) -> None:
    port = free_port()
    stack.env["INTELLIDOX_WORKER_PORT"] = str(port)
    try:
        stack.start("worker2", "worker", ready_port=port)
    finally:
        stack.env["INTELLIDOX_WORKER_PORT"] = str(stack.settings.worker_port)


def kill(stack: Stack, name: str) -> None:
    """SIGKILL, as a crash would (no clean shutdown, no leaving the group)."""
    proc = stack.procs.pop(name)
    proc.kill()
    proc.wait()
    stack._logs.pop(name).close()


async def one_run(mode: str, rate: float, restart_after_s: float, seconds: float) -> Run:
    logs = Path(tempfile.mkdtemp(prefix=f"intellidox-failover-{mode}-"))
    stack = Stack.create(get_settings(), logs)
    try:
        stack.start_all(SCANNERS)
        if mode == "standby":
            start_second_worker(stack)
        await asyncio.sleep(3)  # every scanner's heartbeat seen
        async with aiohttp.ClientSession() as session:
            load = Load(stack.url, stack.settings.dev_api_key)
            feeder = asyncio.create_task(run_load(session, load, int(seconds * rate), rate))
            await asyncio.sleep(WARMUP_S)
            killed_at = time.monotonic()
            kill(stack, "worker")
            if mode == "restart":
                await asyncio.sleep(restart_after_s)
                await asyncio.to_thread(
                    stack.start, "worker", "worker", ready_port=stack.settings.worker_port
                )
            _, pending = await asyncio.wait(await feeder, timeout=DRAIN_S)
            for task in pending:  # never finished: counted below, not left to fail later
                task.cancel()
        before = [
            d.done_at - d.confirmed_at
            for d in load.docs
            if d.done_at and d.confirmed_at and d.done_at < killed_at
        ]
        first, last = resumed(load.docs, killed_at, stack.settings.kafka_partitions)
        baseline = statistics.median(before) if before else float("nan")
        unfinished = sum(1 for d in load.docs if d.done_at is None)
        return Run(first, last, baseline, unfinished)
    finally:
        stack.close()


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


async def main_async(mode: str, runs: int, rate: float, restart_after_s: float) -> None:
    seconds = WARMUP_S + (restart_after_s if mode == "restart" else 0) + 75.0
    results = []
    for index in range(runs):
        run = await one_run(mode, rate, restart_after_s, seconds)
        results.append(run)
        print(
            f"run {index + 1}: first partition back {_fmt(run.first_s)}, all back "
            f"{_fmt(run.all_s)} (confirm->done before the kill {run.baseline_s:.2f} s, "
            f"{run.unfinished} documents unfinished)",
            flush=True,
        )
    firsts = [r.first_s for r in results if r.first_s is not None]
    alls = [r.all_s for r in results if r.all_s is not None]
    print(
        f"{mode}: median first {_fmt(statistics.median(firsts) if firsts else None)}, "
        f"median all {_fmt(statistics.median(alls) if alls else None)} over {runs} runs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("restart", "standby"), default="restart")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--restart-after", type=float, default=3.0)
    args = parser.parse_args()
    asyncio.run(main_async(args.mode, args.runs, args.rate, args.restart_after))


if __name__ == "__main__":
    main()
