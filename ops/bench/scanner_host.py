"""One scanner host's CPU per document, and Kafka's, with N instant scanner groups.

Run with Kafka up:  .venv/bin/python -m ops.bench.scanner_host [--scanners 20 --docs 1000]

Starts ``intellidox scanner run`` with N instant simulated scanners (``inst00`` ...) on fresh
topics, then measures, over ``--idle`` seconds with nothing to do, the CPU of the scanner
process (its engine processes included) and of the Kafka broker; then writes ``--docs`` scan
requests (a distinct 10 KB object each) naming every scanner straight into scan.requests (no
gateway, no worker: only the scanner host's own work) and measures both again until every
verdict is out (the scanner process's ``/metrics``), with the objects downloaded per document.
The objects are served over HTTP from a process of its own.  The broker is shared with
whatever else runs on the machine: run on a quiet machine, or on a private broker
(``INTELLIDOX_VAR_DIR`` and ``INTELLIDOX_KAFKA_PORT``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import tempfile
import time
from pathlib import Path

import psutil

from ops.bench.runner_overhead import fill, served
from ops.metrics import scrape, total
from ops.settings import Settings, get_settings
from ops.stack import Stack

DOC_SIZE = 10 * 1024


def _cpu_s(proc: psutil.Process, reaped: bool = True) -> float:
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system + ((t.children_user + t.children_system) if reaped else 0.0)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process, its children alive and those it has reaped."""
    proc = psutil.Process(pid)
    children = proc.children(recursive=True)
    return _cpu_s(proc) + sum(_cpu_s(child, reaped=False) for child in children)


def broker_cpu_s(settings: Settings) -> float:
    """CPU seconds of the Kafka broker these settings point at (found by its data dir)."""
    marks = ("kafka.Kafka", f"{settings.var_dir}/kafka/")
    used = 0.0
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if all(mark in " ".join(proc.cmdline()) for mark in marks):
                used += _cpu_s(proc)
    return used


DOWNLOADS = "intellidox_scanner_downloads_total"


def metric(stack: Stack, name: str) -> int:
    """A counter of the scanner process, summed over its scanners."""
    url = f"http://{stack.settings.bind.host}:{stack.settings.bind.scanner_port_base}/metrics"
    return int(total(scrape(url, stack.settings.metrics_token), name))


def scanned(stack: Stack) -> int:
    return metric(stack, "intellidox_verdicts_total")


def wait_scanned(stack: Stack, total: int, stall_s: float = 60.0) -> None:
    last, since = -1, time.monotonic()
    while (now := scanned(stack)) < total:
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > stall_s:
            raise RuntimeError(f"no progress for {stall_s:.0f}s at {now}/{total} verdicts")
        time.sleep(0.5)


def documents(directory: Path, base: str, count: int) -> list[tuple[str, str]]:
    """``count`` distinct 10 KB objects in ``directory`` (served at ``base``): URL, SHA-256."""
    found = []
    for _ in range(count):
        data = os.urandom(DOC_SIZE)
        sha = hashlib.sha256(data).hexdigest()
        (directory / sha).write_bytes(data)
        found.append((f"{base}/{sha}", sha))
    return found


def run(
    stack: Stack, objects: list[tuple[str, str]], names: list[str], args: argparse.Namespace
) -> None:
    settings = stack.settings
    pid = stack.procs["scanners"].pid
    fill(settings, objects[:10], names)  # warm-up: groups joined, engines up
    wait_scanned(stack, 10 * len(names))
    host0, kafka0 = tree_cpu_s(pid), broker_cpu_s(settings)
    time.sleep(args.idle)
    host1, kafka1 = tree_cpu_s(pid), broker_cpu_s(settings)
    print(
        f"idle {args.idle:g}s: scanner host {(host1 - host0) / args.idle * 100:.1f}% of a core, "
        f"kafka {(kafka1 - kafka0) / args.idle * 100:.1f}%"
    )
    wall0, downloads0 = time.monotonic(), metric(stack, DOWNLOADS)
    fill(settings, objects[10:], names)
    wait_scanned(stack, (10 + args.docs) * len(names))
    wall = time.monotonic() - wall0
    host, kafka = tree_cpu_s(pid) - host1, broker_cpu_s(settings) - kafka1
    downloads = metric(stack, DOWNLOADS) - downloads0
    print(
        f"{args.docs} documents x {len(names)} scanners in {wall:.1f}s "
        f"({args.docs / wall:.0f} documents/s); CPU ms per document: scanner host "
        f"{host / args.docs * 1000:.1f}, kafka {kafka / args.docs * 1000:.1f}; downloads "
        f"per document {downloads / args.docs:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scanners", type=int, default=20)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    names = [f"inst{i:02d}" for i in range(args.scanners)]
    logs = Path(tempfile.mkdtemp(prefix="intellidox-scanner-host-"))
    stack = Stack.create(get_settings(), logs)
    try:
        directory = Path(tempfile.mkdtemp())
        with served(directory) as base:
            objects = documents(directory, base, 10 + args.docs)
            specs = [f"{name}:simulated?latency_ms=0" for name in names]
            stack.start(
                "scanners",
                "scanner",
                "run",
                *specs,
                ready_port=stack.settings.bind.scanner_port_base,
            )
            print(f"load average {' '.join(f'{x:.2f}' for x in psutil.getloadavg())}; logs {logs}")
            run(stack, objects, names, args)
    finally:
        stack.close()


if __name__ == "__main__":
    main()
