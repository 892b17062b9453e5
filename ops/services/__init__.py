"""The local runtime: every backing service as a plain process (no Docker needed)."""

from __future__ import annotations

from collections.abc import Iterable

from ops.services.base import Service
from ops.settings import Settings

# Start order: storage first, ClamAV last (it is slowest to load signatures on big databases,
# but ours is tiny), then Prometheus, which scrapes our processes once they are up.  Names are
# what `intellidox up NAME` and `status` use.
SERVICE_NAMES = ("postgres", "seaweedfs", "kafka", "cassandra", "clamav", "prometheus")
PROCESS_NAMES = ("worker", "gateway", "storage-events", "scanners")
ALL_NAMES = SERVICE_NAMES + PROCESS_NAMES


def build_services(settings: Settings) -> list[Service]:
    from ops.services.cassandra import Cassandra
    from ops.services.clamav import ClamAV
    from ops.services.kafka import Kafka
    from ops.services.postgres import Postgres
    from ops.services.processes import own_processes
    from ops.services.prometheus import Prometheus
    from ops.services.seaweedfs import SeaweedFS

    backing: list[Service] = [
        Postgres(settings),
        SeaweedFS(settings),
        Kafka(settings),
        Cassandra(settings),
        ClamAV(settings),
        Prometheus(settings),
    ]
    return [*backing, *own_processes(settings)]


def bootstrap_services(services: Iterable[Service]) -> None:
    """Create what the pipeline needs on running services, in start order: the Postgres schema,
    the buckets, Kafka's SCRAM users, topics and ACLs, the Cassandra keyspace (each service's
    idempotent ``bootstrap``).  ``intellidox up`` runs it as each service answers, ``intellidox
    bootstrap`` on services started elsewhere, the tests' containers path on its containers."""
    for service in services:
        service.bootstrap()
