"""A hostile extractor script tries every escape the security review found; all must fail.

The probe runs through the public :func:`streams.extractor.run_script`, as the worker and
publish-time validation do, and reports what it got as its metadata.  Each target is first
shown to be reachable from the test itself, so a pass cannot come from a service being down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.services.postgres import Postgres
from ops.services.seaweedfs import SeaweedFS
from ops.settings import Settings
from streams.extractor import Limits, run_script

pytestmark = pytest.mark.integration

CODE_DIR = Path(__file__).parents[2] / "streams"
ESCAPED = "ESCAPED"

PROBE = r"""
import ctypes, os, socket, sys

def _try(action):
    try:
        action()
    except BaseException as exc:
        return "blocked: " + type(exc).__name__
    return "ESCAPED"

def _setns_net(pid):
    def setns():
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        if libc.setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    return setns

def _syscall_ok(result):
    if result < 0:
        raise OSError(ctypes.get_errno(), "refused")

def _add_key():  # kernel keyrings are per uid: a channel to the next document's script
    libc = ctypes.CDLL(None, use_errno=True)
    number = {"x86_64": 248, "aarch64": 217}[os.uname().machine]
    _syscall_ok(libc.syscall(number, b"user", b"intellidox-probe", b"x", 1, -4))

def _new_user_namespace():
    libc = ctypes.CDLL(None, use_errno=True)
    _syscall_ok(libc.unshare(0x10000000))

def _tcp(port):
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=2).close()

def _unix(path):
    def connect():
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        s.connect(path)
        s.close()
    return connect

def _read(path):
    return lambda: open(path, "rb").read(1)

def _write(path):
    def write():
        with open(path, "w") as out:
            out.write("escaped")
    return write

SLEEP = "import time; time.sleep(60)"

def _detach():
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)

def _leave_a_sleeper(token):
    def fork():
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                _detach()
                os.execv(sys.executable, [sys.executable, "-c", SLEEP, token])
            os._exit(0)
    return fork

def extract(path, info):
    status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
    meta = {"uid": int(status["Uid"].split()[1]), "cap_eff": status["CapEff"].strip()}
    meta["setns_init_net"] = _try(_setns_net(1))
    meta["setns_parent_net"] = _try(_setns_net(os.getppid()))
    meta["kafka_tcp"] = _try(_tcp(info["kafka_port"]))
    meta["postgres_tcp"] = _try(_tcp(info["postgres_port"]))
    meta["s3_tcp"] = _try(_tcp(info["s3_port"]))
    meta["postgres_unix"] = _try(_unix(info["postgres_socket"]))
    meta["s3_identities"] = _try(_read(info["s3_identities"]))
    meta["sibling_file"] = _try(_read(os.path.join(os.path.dirname(path), "sibling.txt")))
    meta["sibling_host_path"] = _try(_read(info["sibling"]))
    meta["write_code_dir"] = _try(_write(info["code_file"]))
    meta["write_tmp"] = _try(_write(info["host_tmp_file"]))  # may land in its own scratch
    meta["keyring"] = _try(_add_key)
    meta["new_user_namespace"] = _try(_new_user_namespace)
    meta["secrets_in_env"] = sum(k.startswith("INTELLIDOX_") for k in os.environ)
    _leave_a_sleeper(info["token"])()
    return meta
"""

HANGS_WITH_A_SLEEPER = r"""
import os, sys, time

def extract(path, info):
    if os.fork() == 0:
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        sleep = "import time; time.sleep(60)"
        os.execv(sys.executable, [sys.executable, "-c", sleep, info["token"]])
    time.sleep(3600)
"""

FORK_BOMB = r"""
import os, time

def extract(path, info):
    started = 0
    for _ in range(300):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(10)
            os._exit(0)
        started += 1
    return {"forked": started}
"""


def _survivors(token: str) -> list[int]:
    """Host pids whose command line carries ``token`` (left behind by a script)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def token() -> Iterator[str]:
    value = "intellidox-probe-" + uuid.uuid4().hex[:12]
    yield value
    time.sleep(0.2)  # a sleeper that is being started still shows up
    _kill(_survivors(value))
    for leftover in (CODE_DIR / f"{value}.txt", Path("/tmp") / f"{value}.txt"):
        leftover.unlink(missing_ok=True)


def _reachable_from_host(settings: Settings, socket_path: Path, identities: Path) -> None:
    for service in (settings.kafka, settings.postgres, settings.s3):
        socket.create_connection((service.host, service.port), timeout=2).close()
    unix = socket.socket(socket.AF_UNIX)
    unix.connect(str(socket_path))
    unix.close()
    assert identities.read_bytes()


def _probe_info(settings: Settings, token: str, sample: Path) -> dict[str, object]:
    socket_path = Postgres(settings).socket_dir / f".s.PGSQL.{settings.postgres.port}"
    identities = SeaweedFS(settings).identities_file
    _reachable_from_host(settings, socket_path, identities)
    return {
        "file_name": sample.name,
        "token": token,
        "kafka_port": settings.kafka.port,
        "postgres_port": settings.postgres.port,
        "s3_port": settings.s3.port,
        "postgres_socket": str(socket_path),
        "s3_identities": str(identities),
        "sibling": str(sample.parent / "sibling.txt"),
        "code_file": str(CODE_DIR / f"{token}.txt"),
        "host_tmp_file": f"/tmp/{token}.txt",
    }


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    (tmp_path / "sibling.txt").write_text("another tenant's document")
    path = tmp_path / "input.txt"
    path.write_text("hello\n")
    return path


async def test_a_hostile_script_gets_no_privilege_network_secret_or_write(
    settings: Settings, token: str, sample: Path, tmp_path: Path
) -> None:
    info = _probe_info(settings, token, sample)
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    outcome = await run_script(script, sample, info, Limits(timeout_s=20))
    assert outcome.error is None, outcome.error
    meta = outcome.meta
    escaped = sorted(k for k, v in meta.items() if v == ESCAPED and k != "write_tmp")
    got = (meta["uid"] == 0, meta["cap_eff"], meta["secrets_in_env"], escaped)
    assert got == (False, "0000000000000000", 0, []), got
    assert not (CODE_DIR / f"{token}.txt").exists()
    assert not Path(f"/tmp/{token}.txt").exists()
    assert _survivors(token) == []


async def test_processes_a_script_leaves_behind_die_at_its_time_limit(
    token: str, sample: Path, tmp_path: Path
) -> None:
    script = tmp_path / "hangs.py"
    script.write_text(HANGS_WITH_A_SLEEPER)
    started = time.monotonic()
    outcome = await run_script(script, sample, {"token": token}, Limits(timeout_s=2))
    assert outcome.error and "time limit" in outcome.error
    assert time.monotonic() - started < 6
    time.sleep(0.2)
    assert _survivors(token) == []


async def test_a_fork_bomb_stops_at_the_process_limit(sample: Path, tmp_path: Path) -> None:
    script = tmp_path / "bomb.py"
    script.write_text(FORK_BOMB)
    limits = Limits(timeout_s=20)
    outcome = await run_script(script, sample, {}, limits)
    assert outcome.error is None, outcome.error
    assert 0 < outcome.meta["forked"] < limits.processes
