"""A whole IntelliDox stack (worker, scanners, gateway, storage events) on its own topics,
buckets and ports.

The processes are the real ``intellidox`` verbs, run against the running services with a
topic prefix of their own: end-to-end tests and benchmarks use it so they never see the dev
system's events, and several stacks can share one Kafka.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ops.bootstrap.topics import create_topics, delete_topics
from ops.s3 import drop_bucket, s3_client
from ops.services.processes import http_ready
from ops.services.seaweedfs import SeaweedFS
from ops.settings import PREFIX, Settings, child_environment, settings_environment


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
    _launches: dict[str, tuple[tuple[str, ...], int, tuple[str, ...]]] = field(default_factory=dict)
    _envs: dict[str, dict[str, str]] = field(default_factory=dict)  # a process's own env

    @classmethod
    def create(cls, base: Settings, logs: Path, prefix: str | None = None) -> Stack:
        """A stack on fresh topics (``prefix``) and free ports; call :meth:`close` after."""
        token = uuid.uuid4().hex[:8]
        tenant = f"stack-{token}"
        ours = base.with_overrides(
            topic_prefix=prefix or f"stack{token}.",
            # A tenant (and key) of its own: dedup and reads are per tenant, so a stack never
            # reuses verdicts of the dev system or of another stack sharing the databases.
            dev_tenant=tenant,
            dev_api_key=f"idx-{tenant}-{uuid.uuid4().hex}",
            admin_tenants=tenant,
            bind=base.bind.with_overrides(
                gateway_port=free_port(),
                worker_port=free_port(),
                scanner_port_base=free_port(),
                storage_events_port=free_port(),
            ),
            scanner_heartbeat_s=1.0,
            dev_mode=True,  # a stack is part of the local runtime
            # Benchmarks and fuzzing drive a stack through its one tenant: no rate limits in
            # their way (tests of the limits give their tenants limits of their own).
            rate_limit_per_s=1e6,
            rate_limit_burst=1_000_000,
            rate_limit_uploads=1_000_000,
            # Buckets of its own: the storage-events listener of every deployment sharing
            # this SeaweedFS acts only on its own buckets' uploads (and announces them on its
            # own topics), so stacks and the dev system never take each other's events.
            s3=base.s3.with_overrides(bucket_prefix=f"stack{token}"),
        )
        create_topics(ours, ours.topic_prefix)  # and their ACLs
        SeaweedFS(ours).bootstrap()  # this year's and next year's buckets, versioned
        return cls(ours, stack_env(ours), logs)

    @property
    def url(self) -> str:
        return f"http://{self.settings.bind.host}:{self.settings.bind.gateway_port}"

    def start(
        self,
        name: str,
        *argv: str,
        ready_port: int,
        wrapper: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self._launches[name] = (argv, ready_port, wrapper)
        if env is not None:
            self._envs[name] = env
        log = self._logs[name] = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "ops.cli", *argv],
            env=self._envs.get(name, self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://{self.settings.bind.host}:{ready_port}/readyz"
        wait_ready(url, self.procs[name], self.logs / f"{name}.log")

    def start_all(self, scanners: list[str], gateway_wrapper: tuple[str, ...] = ()) -> None:
        self.start("worker", "worker", ready_port=self.settings.bind.worker_port)
        self.start_storage_events("storage-events", self.settings.bind.storage_events_port)
        self.start(
            "scanners", "scanner", "run", *scanners, ready_port=self.settings.bind.scanner_port_base
        )
        self.start(
            "gateway",
            "gateway",
            ready_port=self.settings.bind.gateway_port,
            wrapper=gateway_wrapper,
        )

    def start_gateway(self, name: str, **settings: str) -> str:
        """One more gateway process of this stack, on a port of its own; returns its URL.
        ``settings``: more environment for it, without the prefix (``RATE_LIMIT_...="2"``)."""
        port = free_port()
        overrides = {f"{PREFIX}{key}": value for key, value in settings.items()}
        env = {**self.env, **overrides, f"{PREFIX}GATEWAY_PORT": str(port)}
        self.start(name, "gateway", ready_port=port, env=env)
        return f"http://{self.settings.bind.host}:{port}"

    def start_worker(self, name: str) -> None:
        """One more worker process of this stack (same consumer group), on a port of its own."""
        env = {**self.env, f"{PREFIX}WORKER_PORT": str(port := free_port())}
        self.start(name, "worker", ready_port=port, env=env)

    def start_storage_events(self, name: str, port: int) -> None:
        """A storage-events listener of this stack (several may run side by side)."""
        env = {**self.env, f"{PREFIX}STORAGE_EVENTS_PORT": str(port)}
        self.start(name, "storage-events", ready_port=port, env=env)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._logs.pop(name).close()

    def kill(self, name: str) -> None:
        """SIGKILL one process, as a crash would (no clean shutdown, no group leave)."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait()
        self._logs.pop(name).close()

    def restart(self, name: str) -> None:
        """Start a process again exactly as it was first started."""
        argv, ready_port, wrapper = self._launches[name]
        self.start(name, *argv, ready_port=ready_port, wrapper=wrapper)

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        delete_topics(self.settings, self.settings.topic_prefix)
        client = s3_client(self.settings)
        for bucket in client.list_buckets().get("Buckets", []):
            if bucket["Name"].startswith(self.settings.s3.bucket_prefix + "-"):
                drop_bucket(client, bucket["Name"])


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{log.stem} exited with {proc.returncode}:\n{tail}")
        if http_ready(url):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{log.stem} not ready after {timeout_s}s; see {log}")


def stack_env(settings: Settings) -> dict[str, str]:
    """The parent's environment with every one of this stack's settings (no stray ones)."""
    env = {k: v for k, v in child_environment().items() if not k.startswith(PREFIX)}
    env.update(settings_environment(settings))
    return env
