"""The supervisor on a tiny real service: a Python HTTP server as a plain process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ops.services.base import Launch, Service, ServiceFailed
from ops.services.runtime import format_table, read_pid, start, state, stop
from ops.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TinyHttp(Service):
    name = "tiny"
    start_timeout_s = 15

    def __init__(self, settings: Settings, port: int) -> None:
        super().__init__(settings)
        self.port = port

    def ports(self) -> list[int]:
        return [self.port]

    def launch(self) -> Launch:
        argv = [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"]
        return Launch(argv=argv)


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[TinyHttp]:
    service = TinyHttp(Settings(var_dir=tmp_path), _free_port())
    yield service
    stop(service)


def test_up_is_idempotent_and_down_leaves_nothing(tiny: TinyHttp) -> None:
    start(tiny)
    pid = read_pid(tiny)
    start(tiny)  # second up: same process
    assert read_pid(tiny) == pid and pid is not None
    assert state(tiny).healthy
    stop(tiny)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not tiny.pid_file.exists()


def test_a_stale_pid_file_is_ignored(tiny: TinyHttp) -> None:
    tiny.home.mkdir(parents=True)
    tiny.pid_file.write_text("999999999")
    start(tiny)
    assert read_pid(tiny) not in (None, 999999999)


def test_a_busy_port_names_its_holder(tiny: TinyHttp) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", tiny.port))
        holder.listen()
        with pytest.raises(ServiceFailed, match=rf"port {tiny.port} is already in use by pid"):
            start(tiny)


def test_status_table_lists_every_column(tiny: TinyHttp) -> None:
    table = format_table([state(tiny)])
    assert table.splitlines()[0].split() == ["SERVICE", "PID", "PORT", "HEALTH", "RSS"]
    assert "down" in table


def test_a_missing_prerequisite_says_how_to_get_it() -> None:
    from ops.services.base import PrerequisiteMissing, require_command

    with pytest.raises(PrerequisiteMissing, match="'no-such-tool' is not installed: apt-get"):
        require_command("no-such-tool", "apt-get install -y no-such-tool")


def test_a_pid_file_naming_a_younger_process_is_stale_and_down_signals_nothing(
    tiny: TinyHttp,
) -> None:
    """The service died and its pid went to someone else since: ``down`` must not kill it."""
    tiny.home.mkdir(parents=True)
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        tiny.pid_file.write_text(str(stranger.pid))
        old = time.time() - 60  # the file outlived the process it was written for
        os.utime(tiny.pid_file, (old, old))
        assert read_pid(tiny) is None and not tiny.pid_file.exists()
        tiny.pid_file.write_text(str(stranger.pid))
        os.utime(tiny.pid_file, (old, old))
        stop(tiny)
        assert stranger.poll() is None  # still running
    finally:
        stranger.kill()
        stranger.wait()


def test_a_pid_file_naming_a_process_outside_its_own_group_is_stale(tiny: TinyHttp) -> None:
    """Each service leads a session of its own; a pid in another's group is not ours."""
    tiny.home.mkdir(parents=True)
    member = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tiny.pid_file.write_text(str(member.pid))  # written after it started, as spawn does
        assert os.getpgid(member.pid) != member.pid
        assert read_pid(tiny) is None
    finally:
        member.kill()
        member.wait()
