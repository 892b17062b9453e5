"""Each engine scans in a child process of its own, under a memory ceiling.

All engines of a scanner host used to share one process: one hostile file (a decompression
bomb for olevba, a parser that crashes) took every engine down with it, and Kafka then
redelivered the same file to the restarted process.  Now the runner thread keeps Kafka, the
download and the heartbeats, and hands each ``scan()`` to an :class:`EngineProcess`: a
``multiprocessing`` child (spawned, so it works the same on Windows) that builds the engine
once and scans request after request.  On POSIX the child's address space is capped
(``RLIMIT_AS``, the ``memory_mb`` of the scanner), so a bomb ends in MemoryError or in the
child's death instead of the host's memory; Windows gets no ceiling, the isolation only.

What the runner learns from a scan is an :class:`Outcome`: the engine's verdict, or
``crashed`` with the reason (exit status, signal, MemoryError) when the child died or had to
be recycled; a child past the deadline is killed.  Either way the next scan gets a fresh
child.  Answers come back as small JSON documents, never pickles: a child that a hostile file
has taken over cannot make the runner run code by answering.  Nothing POSIX-only runs at
import time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from ops.clamd import ClamdUnreachable
from scanners.base import ScanJob, Scanner, TransientEngineError, Verdict

log = logging.getLogger(__name__)
_SPAWN = multiprocessing.get_context("spawn")  # no fork of a process with Kafka threads
START_TIMEOUT_S = 120.0
MAX_ANSWER_BYTES = 64 << 10
# Engine errors worth another try, by type: the engine is busy or its connection dropped.
TRANSIENT_ERRORS = (TransientEngineError, ClamdUnreachable, ConnectionError, TimeoutError)
TRANSIENT = "transient"  # the answer's kind for those (the runner reads it as a retried error)


class EngineStartError(RuntimeError):
    """The engine could not be built in its child process."""


@dataclass(frozen=True)
class EngineSpec:
    """What a child needs to build the engine: its class (importable), options, ceiling."""

    engine: type[Scanner]
    options: dict[str, str]
    memory_mb: int  # 0: no ceiling


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    crashed: str | None = None  # why the engine's process was lost, when it was
    transient: bool = False  # the engine raised a TransientEngineError (or its kin)


class EngineProcess:
    """One child process running one engine; restarted on demand after a loss."""

    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    def start(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        parent, child = _SPAWN.Pipe()
        process = _SPAWN.Process(
            target=serve_engine, args=(self.spec, child), daemon=True, name=self.spec.engine.name
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if not parent.poll(START_TIMEOUT_S):
            self.close()
            raise EngineStartError(f"{self.spec.engine.name} did not start in {START_TIMEOUT_S}s")
        try:
            kind, text = _read_answer(parent)
        except (EOFError, OSError, ValueError):
            kind, text = "failed", self._death()
        if kind != "ready":
            self.close()
            raise EngineStartError(f"{self.spec.engine.name} could not start: {text}")

    def scan(self, path: Path, job: ScanJob, timeout_s: float) -> Outcome:
        """The engine's verdict on ``path``, a ``timeout``, or a crash with its reason."""
        self.start()
        assert self._conn is not None
        verdict: Verdict | None = None
        try:
            self._conn.send((str(path), job))
            if not _answered(self._conn, max(0.0, timeout_s)):
                self.close()
                return Outcome(
                    Verdict("timeout", f"the engine did not answer within {timeout_s:.1f}s")
                )
            kind, text = _read_answer(self._conn)
            if kind == TRANSIENT:
                return Outcome(Verdict("error", text), transient=True)
            verdict = Verdict(kind, text) if kind != "crashed" else None
        except ValueError as exc:  # a malformed answer: the child is not to be trusted
            text = str(exc)
        except (EOFError, OSError):  # the child is gone
            text = self._death()
        if verdict is None:
            self.close()
            return Outcome(Verdict("error", f"engine crashed: {text}"), crashed=text)
        return Outcome(verdict)

    def _death(self) -> str:
        """Why the child is gone: its exit status or the signal that ended it."""
        if self._process is None:
            return "no engine process"
        self._process.join(5)
        code = self._process.exitcode
        if code is None:
            return "the engine process stopped answering"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"the engine process was killed by {signal.Signals(-code).name}"
            return f"the engine process was killed by signal {-code}"
        return f"the engine process exited with status {code}"

    def close(self) -> None:
        """Stop the child now (it may be mid-scan); the next scan starts a new one."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(10)
            process.close()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid


class EnginePool:
    """A runner's engine processes, one per scan in flight, at most ``size``, reused from scan
    to scan.  ``keep`` of them start up front; more start when scans overlap, and those idle
    for ``idle_s`` are stopped again (see :meth:`retire_idle`), so a burst does not leave
    dozens of processes behind.  A scan that finds all ``size`` busy waits for one."""

    def __init__(self, spec: EngineSpec, size: int, keep: int = 1, idle_s: float = 60.0) -> None:
        self.spec = spec
        self.size = max(1, size)
        self.keep = min(max(1, keep), self.size)
        self.idle_s = idle_s
        self._idle: list[tuple[float, EngineProcess]] = []  # (idle since, engine), oldest first
        self._all: list[EngineProcess] = []
        self._free = threading.Condition()

    def start(self) -> None:
        """Start ``keep`` processes up front, so the first scans do not wait for them."""
        with self._free:
            missing = self.keep - len(self._all)
            made = [EngineProcess(self.spec) for _ in range(max(0, missing))]
            self._all += made
        try:
            for engine in made:
                engine.start()
        finally:
            with self._free:
                self._idle += [(time.monotonic(), engine) for engine in made]
                self._free.notify_all()

    @contextlib.contextmanager
    def process(self) -> Iterator[EngineProcess]:
        """An engine process for one scan (waits while all ``size`` are busy)."""
        with self._free:
            self._free.wait_for(lambda: bool(self._idle) or len(self._all) < self.size)
            if self._idle:
                engine = self._idle.pop()[1]  # the most recently used: the others can retire
            else:
                engine = EngineProcess(self.spec)
                self._all.append(engine)
        try:
            yield engine
        finally:
            with self._free:
                self._idle.append((time.monotonic(), engine))
                self._free.notify()

    def retire_idle(self) -> int:
        """Stop processes idle for longer than ``idle_s`` beyond the ``keep`` first; returns
        how many were stopped."""
        cutoff = time.monotonic() - self.idle_s
        with self._free:
            spare = max(0, len(self._all) - self.keep)
            old = [entry for entry in self._idle if entry[0] < cutoff][:spare]
            for entry in old:
                self._idle.remove(entry)
                self._all.remove(entry[1])
            self._free.notify_all()
        for _, engine in old:
            engine.close()
        return len(old)

    @property
    def busy(self) -> int:
        with self._free:
            return len(self._all) - len(self._idle)

    def pids(self) -> list[int]:
        """The engine processes running now (for operators and memory probes)."""
        with self._free:
            return [pid for engine in self._all if (pid := engine.pid) is not None]

    def close(self) -> None:
        with self._free:
            engines, self._all, self._idle = self._all, [], []
            self._free.notify_all()
        for engine in engines:
            engine.close()


# -- the child ---------------------------------------------------------------------------------
def serve_engine(spec: EngineSpec, conn: Connection) -> None:
    """The child's main: build the engine, then answer ``(path, job)`` requests until EOF."""
    from ops.logs import setup_logging
    from ops.settings import get_settings

    setup_logging("engine", get_settings())  # JSON lines, secrets scrubbed, as its host's
    limit_memory(spec.memory_mb)
    try:
        scanner = spec.engine(spec.options)
    except Exception as exc:
        _send(conn, "failed", f"{type(exc).__name__}: {exc}")
        return
    _send(conn, "ready", "")
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the runner is gone or let go of this child
            return
        if not _answer(scanner, request, conn):
            return


def _answer(scanner: Scanner, request: Any, conn: Connection) -> bool:
    """Scan one request and send the answer; False when this child must end."""
    path, job = request
    try:
        verdict = scanner.scan(Path(path), job)
        kind, text = verdict.verdict, verdict.result
    except MemoryError:
        # The ceiling was hit: what the engine holds may be half-built.  Say so and end.
        kind, text = "crashed", "MemoryError: the engine went over its memory ceiling"
    except TRANSIENT_ERRORS as exc:  # by type, never by the wording of a message
        kind, text = TRANSIENT, f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        kind, text = "error", f"{type(exc).__name__}: {exc}"
    try:
        _send(conn, kind, text)
    except OSError:  # the runner is gone (killed, or it gave up on this child)
        return False
    return kind != "crashed"


def _answered(conn: Connection, timeout_s: float) -> bool:
    """Whether the child answered within ``timeout_s``: one poll(2) where there is one
    (``Connection.poll`` builds a selector on every call: it showed in the runner's profile)."""
    if not hasattr(select, "poll"):  # Windows
        return conn.poll(timeout_s)
    waiter = select.poll()
    waiter.register(conn.fileno(), select.POLLIN)
    return bool(waiter.poll(timeout_s * 1000))


def _send(conn: Connection, kind: str, text: str) -> None:
    conn.send_bytes(json.dumps([kind, text[:4000]]).encode())


def _read_answer(conn: Connection) -> tuple[str, str]:
    """``[kind, text]`` from a child, as data only; ValueError when it is anything else."""
    answer = json.loads(conn.recv_bytes(MAX_ANSWER_BYTES))
    if not (
        isinstance(answer, list) and len(answer) == 2 and all(isinstance(a, str) for a in answer)
    ):
        raise ValueError(f"the engine process sent a malformed answer: {str(answer)[:200]}")
    return answer[0], answer[1]


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space (POSIX); Windows has no such limit here."""
    if memory_mb <= 0 or sys.platform == "win32":
        return
    import resource  # POSIX only: imported here, never at import time

    ceiling = memory_mb << 20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
