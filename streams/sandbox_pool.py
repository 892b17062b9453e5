"""The warm pool: pre-started sandboxes that take documents one at a time.

Why: starting bubblewrap and a Python interpreter for every document dominated the worker's
CPU.  A few sandboxes stay up instead; each serves up to ``jobs_per_worker`` documents and is
replaced after anything but a clean result (script error, crash, timeout, a sweep that left
something behind, a protocol error).  Replacements start in the background, so the next
document usually finds a warm sandbox.

The pool owns one thread per sandbox for the blocking pipe I/O, so one pool serves every
event loop of the process (the worker's, the gateway's admin API, the CLI, tests); callers
await :meth:`Pool.run`.  A cancelled caller kills the sandbox it was using.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from streams import workdir
from streams.sandbox_command import Runtime
from streams.sandbox_job import Job, Outcome, timed_out, verdict
from streams.sandbox_worker import SandboxBroken, SandboxWorker

log = logging.getLogger(__name__)
HOME_PREFIX = "intellidox-sandbox-"


@dataclass(frozen=True)
class PoolConfig:
    size: int = 2
    jobs_per_worker: int = 200
    contained: bool = True  # False: the development-only weak mode (rlimits, no bubblewrap)
    preload: bool = True


class _Ticket:
    """Which sandbox a caller's job holds, so that cancelling the caller can kill it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._worker: SandboxWorker | None = None
        self._abandoned = False

    def hold(self, worker: SandboxWorker) -> bool:
        with self._lock:
            self._worker = worker
            return not self._abandoned

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            if self._worker is not None:
                self._worker.terminate()


class Pool:
    def __init__(self, config: PoolConfig, runtime: Runtime | None = None) -> None:
        self.config = config
        self.runtime = runtime or Runtime.current()
        self.started = 0
        self._executor = ThreadPoolExecutor(max(1, config.size), thread_name_prefix="sandbox")
        self._lock = threading.Lock()
        self._idle: list[SandboxWorker] = []
        self._live: set[SandboxWorker] = set()
        self._closed = False
        # Homes of pools whose process died without closing (SIGKILL): inboxes may still
        # hold a document's bytes.
        workdir.remove_dead(HOME_PREFIX)
        self._base = workdir.job_dir(HOME_PREFIX)
        self._names = itertools.count()
        for _ in range(config.size):
            self._executor.submit(self._replenish)

    async def run(self, job: Job) -> Outcome:
        ticket = _Ticket()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._run, job, ticket)
        except asyncio.CancelledError:
            ticket.abandon()
            raise

    def _run(self, job: Job, ticket: _Ticket) -> Outcome:
        try:
            worker = self._acquire()
        except SandboxBroken as exc:
            return Outcome({}, f"the extractor sandbox did not start: {exc}")
        if not ticket.hold(worker):
            self._retire(worker)
            return Outcome({}, "cancelled")
        try:
            reply = worker.run(job, time.monotonic() + job.limits.timeout_s)
        except TimeoutError:
            self._retire(worker)
            return timed_out(job.limits)
        except SandboxBroken as exc:
            self._retire(worker)
            return Outcome({}, f"the script crashed: {exc}")
        except OSError as exc:  # the input could not be placed, or a pipe failed
            self._retire(worker)
            return Outcome({}, f"the extractor sandbox failed: {exc}")
        result = verdict(reply, job.limits)
        if result.reusable and worker.jobs < self.config.jobs_per_worker:
            self._release(worker)
        else:
            self._retire(worker)
        return result.outcome

    def _acquire(self) -> SandboxWorker:
        with self._lock:
            if self._closed:
                raise SandboxBroken("the pool is closed")
            if self._idle:
                return self._idle.pop()
        return self._start()

    def _start(self) -> SandboxWorker:
        home = self._base / f"w{next(self._names)}"
        worker = SandboxWorker(self.runtime, home, self.config.contained, self.config.preload)
        with self._lock:
            self._live.add(worker)
        try:
            worker.start()
        except (SandboxBroken, OSError) as exc:
            self._drop(worker)
            raise SandboxBroken(str(exc)) from exc
        with self._lock:
            self.started += 1
        return worker

    def _replenish(self) -> None:
        with self._lock:
            if self._closed or len(self._live) >= self.config.size:
                return
        try:
            worker = self._start()
        except SandboxBroken as exc:
            log.warning("could not start an extractor sandbox: %s", exc)
            return
        self._release(worker)

    def _release(self, worker: SandboxWorker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        self._drop(worker)

    def _retire(self, worker: SandboxWorker) -> None:
        self._drop(worker)
        with contextlib.suppress(RuntimeError):  # the executor is shut down: no replacement
            self._executor.submit(self._replenish)

    def _drop(self, worker: SandboxWorker) -> None:
        worker.kill()
        with self._lock:
            self._live.discard(worker)

    def close(self) -> None:
        """Kill every sandbox (a running job gets an error) and remove the pool's files."""
        with self._lock:
            self._closed = True
            workers = list(self._live)
            self._idle.clear()
        for worker in workers:
            worker.terminate()
        self._executor.shutdown(wait=True, cancel_futures=True)
        for worker in workers:
            worker.kill()
        shutil.rmtree(self._base, ignore_errors=True)
