"""One warm sandbox: a contained runner process and the inbox it reads documents from.

Blocking code on purpose: the pool drives each worker from its own threads, so a sandbox is
usable from any event loop in the process.  For each job the one input file is hard-linked
(or copied) into the worker's private inbox, which the sandbox sees read-only at ``/input``,
and removed again after the reply.  :meth:`SandboxWorker.kill` ends the whole sandbox: the
sandbox's pid 1 is killed through a pidfd, and with it every process in its pid namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from ops.settings import sandbox_environment
from streams import sandbox_seccomp
from streams.sandbox_command import INBOX, Runtime, bwrap_argv, weak_argv
from streams.sandbox_job import Job

START_TIMEOUT_S = 30.0
SCRATCH_MB = 64
MAX_REPLY_BYTES = 8 << 20
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class SandboxBroken(RuntimeError):
    """The sandbox died, did not start, or broke the protocol; it must be replaced."""


class SandboxWorker:
    def __init__(self, runtime: Runtime, home: Path, contained: bool, preload: bool) -> None:
        self.runtime, self.home, self.contained, self.preload = runtime, home, contained, preload
        self.inbox, self.scratch = home / "inbox", home / "scratch"
        self.jobs = 0
        self._script: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pidfd: int | None = None
        self._pending = b""
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the sandbox and wait for the runner's ``ready``; SandboxBroken if not."""
        self.home.mkdir(mode=0o700)
        self.inbox.mkdir(mode=0o755)
        self.scratch.mkdir(mode=0o700)
        os.chmod(self.inbox, 0o755)  # the sandbox uid reads it; the 0700 home hides it
        info_r, info_w = os.pipe()
        try:
            self._proc = self._spawn(info_w)
            os.close(info_w)
            info_w = -1
            self._pidfd = self._sandbox_pidfd(info_r) if self.contained else None
            ready = self._read_reply(time.monotonic() + START_TIMEOUT_S)
        except TimeoutError as exc:
            raise SandboxBroken(f"did not start within {START_TIMEOUT_S:g}s") from exc
        finally:
            os.close(info_r)
            if info_w >= 0:
                os.close(info_w)
        if ready != {"ready": True}:
            raise SandboxBroken(f"unexpected first line {ready!r}")

    def _spawn(self, info_fd: int) -> subprocess.Popen[bytes]:
        if not self.contained:
            return self._popen(weak_argv(self.runtime, self.scratch), ())
        seccomp_fd = sandbox_seccomp.program_fd() if sandbox_seccomp.supported() else None
        argv = bwrap_argv(self.runtime, self.inbox, SCRATCH_MB, self.preload, seccomp_fd)
        argv[1:1] = ["--info-fd", str(info_fd)]
        try:
            return self._popen(argv, (info_fd,) if seccomp_fd is None else (info_fd, seccomp_fd))
        finally:
            if seccomp_fd is not None:
                os.close(seccomp_fd)

    def _popen(self, argv: list[str], fds: tuple[int, ...]) -> subprocess.Popen[bytes]:
        with open(self.home / "sandbox.log", "wb") as log:
            return subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                pass_fds=fds,
                env=sandbox_environment(),
                cwd=self.scratch,
                start_new_session=True,
            )

    def _sandbox_pidfd(self, info_fd: int) -> int:
        """A pidfd on the sandbox's pid 1 (bubblewrap reports its host pid on --info-fd)."""
        data = b""
        while chunk := os.read(info_fd, 4096):
            data += chunk
        try:
            return os.pidfd_open(int(json.loads(data)["child-pid"]))
        except (ValueError, KeyError, OSError) as exc:
            raise SandboxBroken(f"bubblewrap failed: {self.log_tail()}") from exc

    def run(self, job: Job, deadline: float) -> Any:
        """Send one job, return the runner's reply; TimeoutError at the deadline."""
        name = self._place(job.path)
        try:
            path = f"{INBOX}/{name}" if self.contained else str(self.inbox / name)
            sha = job.script_sha
            self._send(job.request(path, send_source=self._script != sha))
            self._script = sha
            return self._read_reply(deadline)
        finally:
            (self.inbox / name).unlink(missing_ok=True)
            self.jobs += 1

    def _place(self, source: Path) -> str:
        """The input file, visible in the inbox for this job only (readable by the sandbox)."""
        name = source.name if _SAFE_NAME.fullmatch(source.name) else "input"
        target = self.inbox / name
        target.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.link(source, target)
            if target.stat().st_mode & stat.S_IROTH:
                return name
            target.unlink()
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)
        return name

    def _send(self, line: bytes) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(line)
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise SandboxBroken(f"the sandbox is gone: {self.log_tail()}") from exc

    def _read_reply(self, deadline: float) -> Any:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise SandboxBroken(f"the sandbox exited: {self.log_tail()}")
            self._pending += chunk
            if len(self._pending) > MAX_REPLY_BYTES:
                raise SandboxBroken("the sandbox sent an oversized reply")
        line, _, self._pending = self._pending.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError as exc:
            raise SandboxBroken("the sandbox sent a malformed reply") from exc

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = (self.home / "sandbox.log").read_bytes().decode(errors="replace").splitlines()
            if lines:
                return lines[-1][:300]
        return "no output"

    def terminate(self) -> None:
        """Kill the sandbox's processes now; safe from any thread (kill() cleans up)."""
        with self._lock:
            self._signal()

    def kill(self) -> None:
        """End the sandbox and everything in it; remove its inbox and scratch (idempotent)."""
        with self._lock:
            self._signal(launcher=self._pidfd is None)
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
            if self._proc is not None:
                self._wait_for_launcher()
                for pipe in (self._proc.stdin, self._proc.stdout):
                    if pipe is not None:
                        with contextlib.suppress(OSError):
                            pipe.close()
                self._proc = None
        shutil.rmtree(self.home, ignore_errors=True)

    def _signal(self, launcher: bool = True) -> None:
        """SIGKILL the sandbox's pid 1 (its pid namespace dies with it) and the launcher."""
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        if self._proc is not None and launcher:
            with contextlib.suppress(OSError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def _wait_for_launcher(self) -> None:
        """bubblewrap exits once it has reaped the sandbox (so its CPU is accounted)."""
        assert self._proc is not None
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
