"""A Cassandra session with a prepared-statement cache, shared by gateway and workers."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ops.settings import CassandraSettings, Settings

if TYPE_CHECKING:
    from cassandra.cluster import Cluster


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


def open_cluster(settings: Settings, timeout_s: float = 10.0, dict_rows: bool = False) -> Cluster:
    """A driver ``Cluster`` for the configured node (call ``connect()`` on it, then shut down).

    ``dict_rows``: rows as plain dicts instead of the default namedtuples, whose factory
    builds a new class for every result (about 5 % of the gateway's CPU under load)."""
    from cassandra import ProtocolVersion
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import ExponentialReconnectionPolicy, RoundRobinPolicy
    from cassandra.query import dict_factory, named_tuple_factory

    # An explicit policy: the driver warns when it has to guess the local datacenter.
    profile = ExecutionProfile(
        load_balancing_policy=RoundRobinPolicy(),
        request_timeout=timeout_s,
        row_factory=dict_factory if dict_rows else named_tuple_factory,
    )
    node = settings.cassandra
    return Cluster(
        [node.host],
        port=node.port,
        auth_provider=_auth(node),
        protocol_version=ProtocolVersion.V5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=timeout_s,
        # The driver leaves Nagle's algorithm on: a request of more than one segment (a batch
        # of verdicts) then waited for the node's delayed ACK, ~45 ms instead of ~3.
        sockopts=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        control_connection_timeout=timeout_s,
        # The default backs off to 10 minutes between reconnects: after a 60 s outage the
        # writers stayed away for minutes.  Capped at 2 s, they are back as soon as it is.
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.2, max_delay=2.0),
    )


def _auth(node: CassandraSettings) -> Any:
    """Password authentication when a user is set (the local runtime's node has none)."""
    if not node.user:
        return None
    from cassandra.auth import PlainTextAuthProvider

    return PlainTextAuthProvider(username=node.user, password=node.password)
