"""A whole IntelliDox stack (worker, scanners, gateway) on its own topics and ports.

The processes are the real ``intellidox`` verbs, run against the running services with a
topic prefix of their own: end-to-end tests and benchmarks use it so they never see the dev
system's events, and several stacks can share one Kafka.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ops.bootstrap.topics import create_topics, delete_topics
from ops.settings import Settings, child_environment


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)

    @classmethod
    def create(cls, base: Settings, logs: Path, prefix: str | None = None) -> Stack:
        """A stack on fresh topics (``prefix``) and free ports; call :meth:`close` after."""
        ours = base.with_overrides(
            topic_prefix=prefix or f"stack{uuid.uuid4().hex[:8]}.",
            gateway_port=free_port(),
            worker_port=free_port(),
            scanner_port_base=free_port(),
            scanner_heartbeat_s=1.0,
        )
        create_topics(ours.kafka_bootstrap, ours.topic_prefix)
        return cls(ours, stack_env(ours), logs)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.gateway_port}"

    def start(self, name: str, *argv: str, ready_port: int, wrapper: tuple[str, ...] = ()) -> None:
        log = self._logs[name] = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "ops.cli", *argv],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://{self.settings.host}:{ready_port}/readyz"
        wait_ready(url, self.procs[name], self.logs / f"{name}.log")

    def start_all(self, scanners: list[str], gateway_wrapper: tuple[str, ...] = ()) -> None:
        self.start("worker", "worker", ready_port=self.settings.worker_port)
        self.start(
            "scanners", "scanner", "run", *scanners, ready_port=self.settings.scanner_port_base
        )
        self.start(
            "gateway", "gateway", ready_port=self.settings.gateway_port, wrapper=gateway_wrapper
        )

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._logs.pop(name).close()

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        delete_topics(self.settings.kafka_bootstrap, self.settings.topic_prefix)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{log.stem} exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{log.stem} not ready after {timeout_s}s; see {log}")


def stack_env(settings: Settings) -> dict[str, str]:
    """The parent's environment with this stack's settings (and no stray INTELLIDOX_*)."""
    env = {k: v for k, v in child_environment().items() if not k.startswith("INTELLIDOX_")}
    env.update(
        {
            "INTELLIDOX_TOPIC_PREFIX": settings.topic_prefix,
            "INTELLIDOX_GATEWAY_PORT": str(settings.gateway_port),
            "INTELLIDOX_WORKER_PORT": str(settings.worker_port),
            "INTELLIDOX_SCANNER_PORT_BASE": str(settings.scanner_port_base),
            "INTELLIDOX_SCANNER_HEARTBEAT_S": str(settings.scanner_heartbeat_s),
            "INTELLIDOX_KAFKA_PORT": str(settings.kafka_port),
            "INTELLIDOX_POSTGRES_PORT": str(settings.postgres_port),
            "INTELLIDOX_CASSANDRA_PORT": str(settings.cassandra_port),
            "INTELLIDOX_S3_PORT": str(settings.s3_port),
            "INTELLIDOX_CLAMD_PORT": str(settings.clamd_port),
            "INTELLIDOX_VAR_DIR": str(settings.var_dir),
            "INTELLIDOX_META_CACHE_S": str(settings.meta_cache_s),
            "INTELLIDOX_MULTIPART_THRESHOLD": str(settings.multipart_threshold),
            "INTELLIDOX_MULTIPART_PART_SIZE": str(settings.multipart_part_size),
            "INTELLIDOX_HOST": settings.host,
        }
    )
    return env
