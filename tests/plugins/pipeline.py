"""A whole IntelliDox pipeline for end-to-end tests, on its own topics.

The worker, the scanners and the gateway run as real processes (the same ``intellidox``
verbs as in production) against the running services, with a topic prefix and ports of
their own, so tests never see the dev system's events and vice versa.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psycopg
import pytest

from gateway.auth import key_digest
from ops.bootstrap.topics import create_topics, delete_topics
from ops.settings import Settings

SCANNERS = [
    "clamav",
    "sim-a:simulated?latency_ms=50&vendor=Sim A",
    "sim-b:simulated?latency_ms=300&jitter_ms=100",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pipeline:
    settings: Settings
    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.gateway_port}"

    def start(self, name: str, *argv: str, ready_port: int) -> None:
        log = self._logs[name] = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", *argv],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_ready(
            f"http://{self.settings.host}:{ready_port}/readyz", self.procs[name], name, self.logs
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

    def add_tenant(self, tenant: str) -> str:
        key = f"key-{tenant}-{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.settings.postgres_dsn) as conn:
            conn.execute(
                "INSERT INTO api_keys (key_sha256, tenant) VALUES (%s, %s)",
                (key_digest(key), tenant),
            )
        return key


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], name: str, logs: Path, timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} not ready after {timeout_s}s; see {logs / (name + '.log')}")


def pipeline_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTELLIDOX_")}
    env.update(
        {
            "INTELLIDOX_TOPIC_PREFIX": settings.topic_prefix,
            "INTELLIDOX_GATEWAY_PORT": str(settings.gateway_port),
            "INTELLIDOX_WORKER_PORT": str(settings.worker_port),
            "INTELLIDOX_SCANNER_PORT_BASE": str(settings.scanner_port_base),
            "INTELLIDOX_SCANNER_HEARTBEAT_S": "1",
            "INTELLIDOX_KAFKA_PORT": str(settings.kafka_port),
            "INTELLIDOX_HOST": settings.host,
        }
    )
    return env


@pytest.fixture(scope="session")
def pipeline(
    settings: Settings, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    prefix = f"e2e{uuid.uuid4().hex[:8]}."
    ours = settings.with_overrides(
        topic_prefix=prefix,
        gateway_port=free_port(),
        worker_port=free_port(),
        scanner_port_base=free_port(),
        scanner_heartbeat_s=1.0,
    )
    create_topics(kafka_bootstrap, prefix)
    pipe = Pipeline(ours, pipeline_env(ours), tmp_path_factory.mktemp("pipeline-logs"))
    try:
        pipe.start("worker", "worker", ready_port=ours.worker_port)
        pipe.start("scanners", "scanner", "run", *SCANNERS, ready_port=ours.scanner_port_base)
        pipe.start("gateway", "gateway", ready_port=ours.gateway_port)
        yield pipe
    finally:
        for name in list(pipe.procs):
            pipe.stop(name)
        delete_topics(kafka_bootstrap, prefix)
