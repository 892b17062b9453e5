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
        from cassandra.query import dict_factory

        cluster = open_cluster(settings)
        session = cluster.connect()
        # Plain dicts: the default namedtuple factory builds a new class for every result
        # (about 5 % of the gateway's CPU under load), and every reader wanted a dict anyway.
        session.row_factory = dict_factory
        return cls(cluster, session)

    def prepared(self, query: str) -> Any:
        statement = self._prepared.get(query)
        if statement is None:
            with self._lock:
                statement = self._prepared.get(query) or self.session.prepare(query)
                self._prepared[query] = statement
        return statement

    def close(self) -> None:
        self.cluster.shutdown()
