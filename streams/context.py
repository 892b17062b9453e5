"""The worker's shared resources, opened once per process on first use."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ops.cql import CassandraClient
from ops.s3 import s3_client
from ops.settings import Settings
from streams.extractor import Limits

DEFAULT_SCRIPT = Path(__file__).parent / "extractors" / "default.py"
DEFAULT_VERSION = "default-1"


@dataclass
class WorkerContext:
    settings: Settings
    s3: Any
    limits: Limits = field(default_factory=Limits)
    script: Path = DEFAULT_SCRIPT
    script_version: str = DEFAULT_VERSION
    _pool: AsyncConnectionPool | None = None
    _cassandra: CassandraClient | None = None

    async def pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            self._pool = AsyncConnectionPool(
                self.settings.postgres.dsn, min_size=1, max_size=4, open=False
            )
            await self._pool.open(wait=True, timeout=30)
        return self._pool

    def active_script(self) -> tuple[Path, str]:
        """The script and its version, read together (a document uses one pair throughout)."""
        return self.script, self.script_version

    def use_script(self, script: Path, version: str) -> None:
        """Swap the active script; no await in between, so no reader sees half of it."""
        self.script, self.script_version = script, version

    def cassandra(self) -> CassandraClient:
        if self._cassandra is None:
            self._cassandra = CassandraClient.connect(self.settings)
        return self._cassandra


@functools.cache
def context() -> WorkerContext:
    """The worker's, for the settings its app was created with."""
    from streams.app import settings

    limits = Limits(timeout_s=settings.extractor_timeout_s, memory_mb=settings.extractor_memory_mb)
    return WorkerContext(settings, s3_client(settings), limits=limits)
