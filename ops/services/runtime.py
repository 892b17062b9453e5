"""The supervisor behind ``intellidox up/down/status``: pid files, ports, start and stop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from ops.services import bootstrap_services
from ops.services.base import Service, ServiceFailed, port_open
from ops.settings import child_environment


@dataclass
class ServiceState:
    name: str
    pid: int | None
    port: int
    healthy: bool
    rss_mb: float | None


# psutil derives a start time from the boot time, which /proc gives in whole seconds.
START_SLACK_S = 2.0

# Children started by this process, kept so they are reaped here (no zombies, no warnings).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def say(message: str) -> None:
    print(f"[intellidox] {message}", file=sys.stderr, flush=True)


def read_pid(service: Service) -> int | None:
    """The live pid from the pid file, or None (and the stale file removed).

    A pid names our service only if that process is as old as the file and leads its own
    process group.  A service that died leaves its file behind, and pids wrap (at 32,768
    here): the pid may belong to anyone by now, and ``down`` signals the whole group of
    the process the file names."""
    try:
        pid = int(service.pid_file.read_text().strip())
        written_at = service.pid_file.stat().st_mtime
    except (FileNotFoundError, ValueError):
        return None
    if _started_for(pid, written_at):
        return pid
    service.pid_file.unlink(missing_ok=True)
    return None


def _started_for(pid: int, written_at: float) -> bool:
    """The pid file written at ``written_at`` (right after the spawn) is this process's."""
    try:
        proc = psutil.Process(pid)
        return (
            proc.status() != psutil.STATUS_ZOMBIE
            and proc.create_time() <= written_at + START_SLACK_S
            and os.getpgid(pid) == pid  # spawn() gives each service a session of its own
        )
    except (psutil.Error, ProcessLookupError):
        return False


def port_holder(port: int) -> str:
    """A human description of who listens on ``port``."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            if conn.pid is None:
                return "an unknown process"
            try:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({' '.join(proc.cmdline())[:120]})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return "an unknown process"


def check_ports_free(service: Service) -> None:
    for port in service.ports():
        if port_open(service.settings.bind.host, port):
            raise ServiceFailed(
                f"{service.name}: port {port} is already in use by {port_holder(port)}; "
                f"stop it or set another port (see ops/settings.py for the INTELLIDOX_* names)"
            )


def _identity(user: str | None) -> tuple[int | None, int | None, list[int] | None]:
    """Run as ``user`` with its own primary group and no inherited (root) groups."""
    if user is None:
        return None, None, None
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid, []


def spawn(service: Service) -> int:
    launch = service.launch()
    uid, gid, groups = _identity(launch.user)
    service.home.mkdir(parents=True, exist_ok=True)
    with open(service.log_file, "ab") as log:
        proc = subprocess.Popen(
            launch.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_environment(launch.env),
            cwd=launch.cwd or service.home,
            start_new_session=True,  # survives the CLI and gets its own process group
            user=uid,
            group=gid,
            extra_groups=groups,
        )
    _CHILDREN[proc.pid] = proc
    service.pid_file.write_text(str(proc.pid))
    return proc.pid


def wait_healthy(service: Service, pid: int) -> None:
    deadline = time.monotonic() + service.start_timeout_s
    while time.monotonic() < deadline:
        if service.healthy():
            return
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            raise ServiceFailed(f"{service.name} exited during start; see {service.log_file}")
        time.sleep(0.5)
    raise ServiceFailed(
        f"{service.name} not healthy after {service.start_timeout_s:.0f}s; see {service.log_file}"
    )


def start(service: Service) -> None:
    """Start one service unless it already runs; then bootstrap it (idempotent)."""
    start_all([service])


def start_all(services: list[Service]) -> None:
    """Launch every service that is not running, then wait for each and bootstrap it: the
    slow starters (two JVMs) come up side by side instead of one after the other, and each
    is bootstrapped while the next one is still starting."""
    launched = [(service, _launch(service)) for service in services]
    for service, (pid, started_at) in launched:
        if started_at is not None:
            wait_healthy(service, pid)
            say(f"{service.name}: healthy in {time.monotonic() - started_at:.1f}s")
        bootstrap_services([service])


def _launch(service: Service) -> tuple[int, float | None]:
    """(pid, when it was started), or (pid, None) when it was already running and healthy."""
    service.check_prerequisites()
    pid = read_pid(service)
    if pid is not None and service.healthy():
        say(f"{service.name}: already running (pid {pid})")
        return pid, None
    if pid is not None:  # alive but not answering yet: wait for it as if just started
        return pid, time.monotonic()
    check_ports_free(service)
    service.install()
    service.configure()
    started_at = time.monotonic()
    pid = spawn(service)
    say(f"{service.name}: started pid {pid}")
    return pid, started_at


def stop(service: Service, timeout_s: float = 30.0) -> None:
    pid = read_pid(service)
    if pid is None:
        say(f"{service.name}: not running")
        return
    _signal_group(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout_s):
        say(f"{service.name}: did not stop in {timeout_s:.0f}s, killing")
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, 5)
    service.pid_file.unlink(missing_ok=True)
    say(f"{service.name}: stopped")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), sig)


def _wait_gone(pid: int, timeout_s: float) -> bool:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _CHILDREN[pid] = child
            return False
        return True
    try:
        psutil.Process(pid).wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def state(service: Service) -> ServiceState:
    pid = read_pid(service)
    rss = None
    if pid is not None:
        rss = _tree_rss_mb(psutil.Process(pid))
    return ServiceState(service.name, pid, service.ports()[0], service.healthy(), rss)


def _tree_rss_mb(proc: psutil.Process) -> float:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def format_table(states: Iterable[ServiceState]) -> str:
    rows = [("SERVICE", "PID", "PORT", "HEALTH", "RSS")]
    for s in states:
        rows.append(
            (
                s.name,
                str(s.pid) if s.pid else "-",
                str(s.port),
                "healthy" if s.healthy else ("starting" if s.pid else "down"),
                f"{s.rss_mb:.0f} MB" if s.rss_mb is not None else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
