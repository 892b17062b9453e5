"""A slow vendor under a steady rate: does it keep up, time out, or hold up a fast one?

Run with the services up (``intellidox up``); it starts its own worker, one scanner process
and gateway on fresh topics:

    .venv/bin/python -m ops.bench.slow_vendor                  # 12 docs/s for 5 minutes
    .venv/bin/python -m ops.bench.slow_vendor --rate 12 --duration 300 --drain 90

The scanner process runs the default fleet's slow vendor (``sim-slow``: 3000 ms +/- 1500 ms)
and its fast one (``sim-fast``: 400 ms +/- 300 ms) side by side.  Documents (10 KB) are offered
through the gateway at ``--rate`` per second for ``--duration`` seconds, each watched over SSE
until ``done``; after the offer the run waits up to ``--drain`` seconds for the stragglers.
Reported, from the verdict topic: ``timeout`` verdicts, verdicts per scanner, each scanner's
latency from the scan request to its verdict (its queueing included) and the rate at which
each one answered; from the clients: documents done and confirm -> done percentiles; the load
average before and after, and CPU ms per document of this stack's processes and Kafka's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ops.bench.common import percentile
from ops.bench.load import Doc, Load, one_document
from ops.bench.scanner_host import broker_cpu_s, tree_cpu_s
from ops.kafka import topic
from ops.replay import read_all
from ops.settings import Settings, get_settings
from ops.stack import Stack
from schemas import topics
from schemas.events import decode_event

VENDORS = ("sim-slow", "sim-fast")
DOC_SIZE = 10 * 1024


def fleet_specs() -> list[str]:
    """The default fleet's specs of the slow and the fast simulated vendor."""
    fleet = [s.strip() for s in Settings().scanner_fleet.split(",")]
    return [spec for spec in fleet if spec.split(":")[0] in VENDORS]


@dataclass(frozen=True)
class Answered:
    """One verdict as the verdict topic has it."""

    scanner: str
    verdict: str
    after_request_s: float  # scan request appended -> verdict appended
    at_s: float  # when the verdict was appended (epoch seconds)


def _requested_at(settings: Settings) -> dict[str, float]:
    found: dict[str, float] = {}
    for message in read_all(settings, topic(settings, topics.SCAN_REQUESTS)):
        doc_id = (message.key() or b"").decode()
        found.setdefault(doc_id, message.timestamp()[1] / 1000)
    return found


def answered(settings: Settings) -> list[Answered]:
    requested = _requested_at(settings)
    out = []
    for message in read_all(settings, topic(settings, topics.SCAN_VERDICTS)):
        record = decode_event(message.value() or b"")
        at = message.timestamp()[1] / 1000
        since = requested.get(str(record["doc_id"]), at)
        out.append(Answered(record["scanner"], record["verdict"], at - since, at))
    return out


def _s(values: list[float]) -> str:
    if not values:
        return "n/a"
    return ", ".join(f"p{q} {percentile(values, q):.2f} s" for q in (50, 90, 99)) + (
        f", max {max(values):.2f} s"
    )


def stack_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of this stack's processes, their engine and sandbox processes
    included, and of the Kafka broker (shared with whatever else uses it): the machine is
    shared, so nothing else on it is counted."""
    used = {name: tree_cpu_s(popen.pid) for name, popen in stack.procs.items()}
    used["kafka (shared)"] = broker_cpu_s(stack.settings)
    return used


def breakdown(before: dict[str, float], after: dict[str, float], docs: int) -> str:
    used = sorted(((after[k] - before.get(k, 0.0), k) for k in after), reverse=True)
    return ", ".join(f"{name} {seconds / max(1, docs) * 1000:.1f}" for seconds, name in used)


def report_verdicts(found: list[Answered], offered_s: float) -> None:
    verdicts = Counter(a.verdict for a in found)
    print(f"timeout verdicts: {verdicts['timeout']}; verdicts by kind: {dict(verdicts)}")
    for scanner in sorted({a.scanner for a in found}):
        ours = [a for a in found if a.scanner == scanner]
        first = min(a.at_s for a in ours)
        in_window = [a for a in ours if a.at_s <= first + offered_s]
        print(
            f"  {scanner}: {len(ours)} verdicts ({len(in_window) / offered_s:.1f}/s over the "
            f"offer); request -> verdict {_s([a.after_request_s for a in ours])}"
        )


async def offer(stack: Stack, load: Load, rate: float, duration_s: float, drain_s: float) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = []
        started = time.monotonic()
        for index in range(int(rate * duration_s)):
            doc = Doc(index)
            load.docs.append(doc)
            tasks.append(asyncio.create_task(one_document(session, load, doc, DOC_SIZE)))
            await asyncio.sleep(max(0.0, started + (index + 1) / rate - time.monotonic()))
        _, pending = await asyncio.wait(tasks, timeout=drain_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run(args: argparse.Namespace) -> None:
    logs = Path(tempfile.mkdtemp(prefix="intellidox-slow-vendor-"))
    stack = Stack.create(get_settings(), logs)
    try:
        stack.start_all(fleet_specs())
        print(f"machine: {os.cpu_count()} cores, load {_load()}; scanners {fleet_specs()}")
        print(f"logs {logs}", flush=True)
        await asyncio.sleep(3)  # every scanner's heartbeat seen by the worker
        load = Load(stack.url, stack.settings.dev_api_key)
        roles_before = stack_cpu(stack)
        await offer(stack, load, args.rate, args.duration, args.drain)
        roles_after = stack_cpu(stack)
        report(stack.settings, load, args, breakdown(roles_before, roles_after, len(load.docs)))
    finally:
        stack.close()


def report(settings: Settings, load: Load, args: argparse.Namespace, cpu: str) -> None:
    docs = load.docs
    done = [d.done_at - d.confirmed_at for d in docs if d.done_at and d.confirmed_at]
    print(
        f"offered {len(docs)} docs at {args.rate:g}/s for {args.duration:g}s (+{args.drain:g}s "
        f"drain): {len(done)} done; confirm -> done {_s(done)}; 5xx: {load.server_errors()}; "
        f"load average now {_load()}"
    )
    print(f"  CPU ms per document by process: {cpu}")
    report_verdicts(answered(settings), args.duration)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=12.0)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--drain", type=float, default=90.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
