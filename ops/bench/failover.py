"""Failover: SIGKILL the worker (or pause the broker) under a steady stream of documents and
time how long until documents are processed again.

``--mode restart`` starts the worker again ``--restart-after`` seconds later; ``--mode
standby`` has a second worker running all along and starts nothing; ``--mode kafka-pause``
pauses the broker (SIGSTOP) for ``--restart-after`` seconds instead (run that one only against
a private Kafka: ``INTELLIDOX_VAR_DIR`` and ``INTELLIDOX_KAFKA_PORT`` of your own, never the
shared one).  Each run is a stack of its own (fresh topics, two simulated scanners).  A
partition counts as resumed at the first ``done`` (seen on SSE) of a document confirmed after
the fault; ``first`` is the first partition back, ``all`` the last one.  After the run it
counts the ``timeout`` verdicts in the projections (REST): the simulated engines never time
out, so each one is false.  Prints one line per run and the medians::

    .venv/bin/python -m ops.bench.failover --mode restart --runs 3
    .venv/bin/python -m ops.bench.failover --mode standby --runs 3
    # slow engines, short deadlines, the worker away for longer than a deadline:
    .venv/bin/python -m ops.bench.failover --latency-ms 1500 --deadline-s 3 \\
        --restart-after 6 --rate 2

A measurement, not a test: run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ops.bench.audit import audit
from ops.bench.load import Doc, Load, call, run_load
from ops.services import build_services
from ops.services.runtime import read_pid
from ops.settings import Settings, get_settings
from ops.stack import Stack
from streams.reread import partition_of

SCANNERS = ("fast-a", "fast-b")
WARMUP_S = 8.0
DRAIN_S = 120.0


@dataclass(frozen=True)
class Run:
    first_s: float | None
    all_s: float | None
    baseline_s: float  # median confirm -> done before the kill
    unfinished: int  # documents that never got their done
    false_timeouts: int  # timeout verdicts in the projections at the end
    sources: Counter[str]  # who gave them: the runner or the tracker (by their text)


def resumed(docs: list[Doc], killed_at: float, partitions: int) -> tuple[float | None, ...]:
    """Seconds from the kill to the first and to the last partition processing again."""
    first_done: dict[int, float] = {}
    for doc in docs:
        if doc.confirmed_at is None or doc.done_at is None or doc.confirmed_at < killed_at:
            continue
        part = partition_of(doc.doc_id.encode(), partitions)
        first_done[part] = min(first_done.get(part, doc.done_at), doc.done_at)
    if len(first_done) < partitions:
        return None, None
    return min(first_done.values()) - killed_at, max(first_done.values()) - killed_at


def start_second_worker(stack: Stack) -> None:
    stack.start_worker("worker2")


def kill(stack: Stack, name: str) -> None:
    """SIGKILL, as a crash would (no clean shutdown, no leaving the group)."""
    proc = stack.procs.pop(name)
    proc.kill()
    proc.wait()
    stack._logs.pop(name).close()


@dataclass(frozen=True)
class Plan:
    mode: str
    rate: float
    restart_after_s: float
    latency_ms: int
    deadline_s: float

    def scanners(self) -> list[str]:
        options = f"latency_ms={self.latency_ms}&jitter_ms={self.latency_ms // 4}&concurrency=6"
        return [f"{name}:simulated?{options}&deadline_s={self.deadline_s:g}" for name in SCANNERS]


async def timeout_sources(session: aiohttp.ClientSession, load: Load) -> Counter[str]:
    """The timeouts' texts, shortened to who gave them (tracker: "no live ...")."""
    found: Counter[str] = Counter()
    for doc in load.docs:
        if doc.doc_id:
            body = await call(session, load, "GET", f"/docs/{doc.doc_id}/scan-results")
            for row in body["scan_results"]:
                if row["verdict"] == "timeout":
                    found["tracker" if row["result"].startswith("no live") else "runner"] += 1
    return found


async def inject(stack: Stack, plan: Plan) -> None:
    """The fault: the worker killed (then restarted, or not), or the broker paused."""
    if plan.mode == "kafka-pause":
        await asyncio.to_thread(pause_kafka, stack.settings, plan.restart_after_s)
        return
    kill(stack, "worker")
    if plan.mode == "restart":
        await asyncio.sleep(plan.restart_after_s)
        port = stack.settings.bind.worker_port
        await asyncio.to_thread(stack.start, "worker", "worker", ready_port=port)


def pause_kafka(settings: Settings, seconds: float) -> None:
    """SIGSTOP the broker for ``seconds``: away for everyone, and nothing lost."""
    service = next(s for s in build_services(settings) if s.name == "kafka")
    pid = read_pid(service)
    if pid is None:
        raise RuntimeError("kafka is not running under this var dir")
    group = os.getpgid(pid)
    os.killpg(group, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.killpg(group, signal.SIGCONT)


async def one_run(plan: Plan, seconds: float) -> Run:
    mode, rate = plan.mode, plan.rate
    logs = Path(tempfile.mkdtemp(prefix=f"intellidox-failover-{mode}-"))
    stack = Stack.create(get_settings(), logs)
    try:
        stack.start_all(plan.scanners())
        if mode == "standby":
            start_second_worker(stack)
        await asyncio.sleep(3)  # every scanner's heartbeat seen
        async with aiohttp.ClientSession() as session:
            load = Load(stack.url, stack.settings.dev_api_key)
            feeder = asyncio.create_task(run_load(session, load, int(seconds * rate), rate))
            await asyncio.sleep(WARMUP_S)
            killed_at = time.monotonic()
            await inject(stack, plan)
            _, pending = await asyncio.wait(await feeder, timeout=DRAIN_S)
            for task in pending:  # never finished: counted below, not left to fail later
                task.cancel()
            checked = await audit(session, load, stack.settings, list(SCANNERS))
            sources = await timeout_sources(session, load)
        before = [
            d.done_at - d.confirmed_at
            for d in load.docs
            if d.done_at and d.confirmed_at and d.done_at < killed_at
        ]
        first, last = resumed(load.docs, killed_at, stack.settings.kafka.partitions)
        baseline = statistics.median(before) if before else float("nan")
        unfinished = sum(1 for d in load.docs if d.done_at is None)
        return Run(first, last, baseline, unfinished, checked.false_verdicts, sources)
    finally:
        stack.close()


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


async def main_async(plan: Plan, runs: int) -> None:
    seconds = WARMUP_S + (plan.restart_after_s if plan.mode != "standby" else 0) + 75.0
    results = []
    for index in range(runs):
        run = await one_run(plan, seconds)
        results.append(run)
        print(
            f"run {index + 1}: first partition back {_fmt(run.first_s)}, all back "
            f"{_fmt(run.all_s)} (confirm->done before the kill {run.baseline_s:.2f} s, "
            f"{run.unfinished} documents unfinished, {run.false_timeouts} false timeouts "
            f"{dict(run.sources)})",
            flush=True,
        )
    firsts = [r.first_s for r in results if r.first_s is not None]
    alls = [r.all_s for r in results if r.all_s is not None]
    print(
        f"{plan.mode}: median first {_fmt(statistics.median(firsts) if firsts else None)}, "
        f"median all {_fmt(statistics.median(alls) if alls else None)} over {runs} runs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("restart", "standby", "kafka-pause"), default="restart")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--restart-after", type=float, default=3.0)
    parser.add_argument("--latency-ms", type=int, default=60)
    parser.add_argument("--deadline-s", type=float, default=30.0)
    args = parser.parse_args()
    plan = Plan(args.mode, args.rate, args.restart_after, args.latency_ms, args.deadline_s)
    asyncio.run(main_async(plan, args.runs))


if __name__ == "__main__":
    main()
