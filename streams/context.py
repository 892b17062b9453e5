"""The worker's shared resources, opened once per process on first use."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from gateway.metrics import Metrics
from ops.cql import CassandraClient
from ops.s3 import s3_client
from ops.settings import Settings, get_settings
from streams.extractor import Limits


@dataclass
class WorkerContext:
    settings: Settings
    s3: Any
    metrics: Metrics = field(default_factory=Metrics)
    limits: Limits = field(default_factory=Limits)
    script: Path = Path(__file__).parent / "extractors" / "default.py"
    script_version: str = "default-1"
    _pool: AsyncConnectionPool | None = None
    _cassandra: CassandraClient | None = None

    async def pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            self._pool = AsyncConnectionPool(
                self.settings.postgres_dsn, min_size=1, max_size=4, open=False
            )
            await self._pool.open(wait=True, timeout=30)
        return self._pool

    def cassandra(self) -> CassandraClient:
        if self._cassandra is None:
            self._cassandra = CassandraClient.connect(self.settings)
        return self._cassandra


@functools.cache
def context() -> WorkerContext:
    settings = get_settings()
    return WorkerContext(settings, s3_client(settings))
