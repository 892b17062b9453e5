"""The optional testcontainers path: ``INTELLIDOX_TESTCONTAINERS=1`` with a Docker engine.

The same fixtures then point at containers instead of the local runtime.  Machines without a
Docker engine (like our dev and CI boxes) skip cleanly with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from ops.settings import Settings


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@contextmanager
def container_settings(base: Settings) -> Iterator[Settings]:
    if not _docker_answers():
        pytest.skip("INTELLIDOX_TESTCONTAINERS=1 but no Docker engine answers on this machine")
    from testcontainers.cassandra import CassandraContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with ExitStack() as stack:
        kafka = stack.enter_context(KafkaContainer("confluentinc/cp-kafka:7.7.1"))
        pg = stack.enter_context(
            PostgresContainer(
                "postgres:15",
                username=base.postgres_user,
                password=base.postgres_password,
                dbname=base.postgres_db,
            )
        )
        cassandra = stack.enter_context(CassandraContainer("cassandra:5.0"))
        s3 = stack.enter_context(
            DockerContainer("chrislusf/seaweedfs:latest")
            .with_command("server -s3")
            .with_exposed_ports(8333, 18888)  # S3, and the filer's gRPC (storage events)
        )
        clamd = stack.enter_context(DockerContainer("clamav/clamav:1.4").with_exposed_ports(3310))
        host = kafka.get_container_host_ip()
        yield base.with_overrides(
            host=host,
            kafka_port=int(kafka.get_exposed_port(9093)),
            postgres_port=int(pg.get_exposed_port(5432)),
            cassandra_port=int(cassandra.get_exposed_port(9042)),
            s3_port=int(s3.get_exposed_port(8333)),
            filer_grpc=f"{host}:{s3.get_exposed_port(18888)}",
            clamd_port=int(clamd.get_exposed_port(3310)),
        )
