"""A whole IntelliDox pipeline for end-to-end tests, on its own topics (see ops/stack.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest

from gateway.auth import key_digest
from ops.settings import Settings
from ops.stack import Stack, free_port
from tests.gateway.client import Api

SCANNERS = [
    "clamav",
    "sim-a:simulated?latency_ms=50&vendor=Sim A",
    "sim-b:simulated?latency_ms=300&jitter_ms=100",
]
__all__ = ["Pipeline", "free_port"]


class Pipeline(Stack):
    def add_tenant(
        self,
        tenant: str,
        rate_per_s: float | None = None,
        rate_burst: int | None = None,
        max_uploads: int | None = None,
    ) -> str:
        """A new tenant and its API key (with rate limits of its own, if given)."""
        key = f"key-{tenant}-{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.settings.postgres.dsn) as conn:
            conn.execute(
                "INSERT INTO api_keys (key_sha256, tenant, rate_per_s, rate_burst, max_uploads)"
                " VALUES (%s, %s, %s, %s, %s)",
                (key_digest(key), tenant, rate_per_s, rate_burst, max_uploads),
            )
        return key


@pytest.fixture(scope="session")
def pipeline(
    settings: Settings, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    # A low multipart threshold lets a test take the multipart path with a few MiB.
    small_parts = settings.with_overrides(
        multipart_threshold=6 << 20,
        multipart_part_size=5 << 20,
        metrics_interval_s=2.0,  # the metrics tests need no 15 s wait for a probe
    )
    logs = tmp_path_factory.mktemp("pipeline-logs")
    with running_pipeline(small_parts, logs, "e2e", SCANNERS) as pipe:
        yield pipe


@contextlib.contextmanager
def running_pipeline(
    settings: Settings, logs: Path, name: str, scanners: list[str]
) -> Iterator[Pipeline]:
    """A pipeline on topics of its own (prefixed ``name``), started with ``scanners``,
    closed after."""
    stack = Stack.create(settings, logs, prefix=f"{name}{uuid.uuid4().hex[:8]}.")
    pipe = Pipeline(stack.settings, stack.env, stack.logs)
    try:
        pipe.start_all(scanners)
        yield pipe
    finally:
        pipe.close()


@pytest.fixture
async def api(pipeline: Pipeline) -> AsyncIterator[Api]:
    """The gateway's API as the dev tenant, on the test pipeline."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, pipeline.url, pipeline.settings.dev_api_key)
