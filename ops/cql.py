"""A Cassandra session with a prepared-statement cache, shared by gateway and workers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ops.services.cassandra import open_cluster
from ops.settings import Settings


@dataclass
class CassandraClient:
    cluster: Any
    session: Any
    _prepared: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def connect(cls, settings: Settings) -> CassandraClient:
        cluster = open_cluster(settings, dict_rows=True)  # every reader wants a dict anyway
        return cls(cluster, cluster.connect())

    def prepared(self, query: str) -> Any:
        statement = self._prepared.get(query)
        if statement is None:
            with self._lock:
                statement = self._prepared.get(query) or self.session.prepare(query)
                self._prepared[query] = statement
        return statement

    def close(self) -> None:
        self.cluster.shutdown()
