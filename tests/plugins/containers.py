"""The optional testcontainers path: ``INTELLIDOX_TESTCONTAINERS=1`` with a Docker engine.

The session's services are then containers instead of the local runtime: Kafka configured as
the local broker is (ops/services/kafka.py: one KRaft node, SASL/SCRAM on the client listener,
PLAIN on its loopback listeners, ACLs, ``admin`` the only super user), Postgres 15, Cassandra
5.0, SeaweedFS's S3 with our access key, and clamd with the project's signatures.  Once they
answer, the bootstrap ``intellidox up`` runs (:func:`ops.services.bootstrap_services`) creates
the Postgres schema, the buckets, Kafka's SCRAM users, topics and ACLs and the Cassandra
keyspace.  The one difference: the container's admin gets its SCRAM credentials when the
storage is formatted, so the bootstrap logs in as admin on the client listener (the broker's
loopback listener is inside the container).

Machines without a Docker engine (our dev and CI boxes) skip with the reason, so this path is
not exercised there; tests/plugins/test_containers.py checks what it can without Docker.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from ops.kafka import ADMIN, client_config
from ops.services import bootstrap_services
from ops.services.base import Service
from ops.services.cassandra import Cassandra
from ops.services.kafka import CLUSTER_ID, Kafka, broker_properties, listener_properties
from ops.services.postgres import Postgres
from ops.services.seaweedfs import SeaweedFS, s3_identities
from ops.settings import Settings

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

KAFKA_IMAGE = "apache/kafka:{version}"  # the Kafka the local runtime runs (settings.kafka)
POSTGRES_IMAGE = "postgres:15"
CASSANDRA_IMAGE = "cassandra:5.0"
SEAWEEDFS_IMAGE = "chrislusf/seaweedfs:4.48"  # as docker-compose.yml
CLAMAV_IMAGE = "clamav/clamav:1.4"

# Ports inside the containers; Docker maps each to a free port of its host.
KAFKA_PORT = 9092
POSTGRES_PORT = 5432
CASSANDRA_PORT = 9042
S3_PORT = 8333
FILER_GRPC_PORT = 18888
CLAMD_PORT = 3310

# Copied in as root (0644, 0755: apache/kafka runs as appuser); the data go where appuser may
# create them.  The properties hold the dev admin password of a throw-away container.
KAFKA_DIR = "/etc/intellidox"
KAFKA_DATA = "/tmp/kafka-data"
KAFKA_START = f"{KAFKA_DIR}/start.sh"
SIGNATURES = Path(__file__).resolve().parents[2] / "ops" / "clamav"
CLAMD_CONF = """\
Foreground yes
DatabaseDirectory /var/lib/intellidox-signatures
TCPSocket 3310
TCPAddr 0.0.0.0
StreamMaxLength 1100M
MaxFileSize 1100M
MaxScanSize 1100M
"""
READY_TIMEOUT_S = 180.0


class Mapped(Protocol):
    """What the path needs of a started container (testcontainers' DockerContainer)."""

    def get_container_host_ip(self) -> str: ...

    def get_exposed_port(self, port: int) -> int: ...


def settings_for(base: Settings, started: Mapping[str, Mapped]) -> Settings:
    """``base`` with every dependency's section pointed at its container's mapped port.

    Where our own processes listen (``base.bind``) does not change: they run here."""

    def at(name: str, port: int) -> tuple[str, int]:
        container = started[name]
        return container.get_container_host_ip(), int(container.get_exposed_port(port))

    kafka_host, kafka_port = at("kafka", KAFKA_PORT)
    pg_host, pg_port = at("postgres", POSTGRES_PORT)
    cql_host, cql_port = at("cassandra", CASSANDRA_PORT)
    s3_host, s3_port = at("seaweedfs", S3_PORT)
    filer_host, filer_port = at("seaweedfs", FILER_GRPC_PORT)
    clamd_host, clamd_port = at("clamav", CLAMD_PORT)
    return base.with_overrides(
        kafka=base.kafka.with_overrides(host=kafka_host, port=kafka_port),
        postgres=base.postgres.with_overrides(host=pg_host, port=pg_port),
        cassandra=base.cassandra.with_overrides(host=cql_host, port=cql_port),
        s3=base.s3.with_overrides(
            host=s3_host, port=s3_port, filer_grpc=f"{filer_host}:{filer_port}"
        ),
        clamd=base.clamd.with_overrides(host=clamd_host, port=clamd_port),
    )


def kafka_properties(settings: Settings) -> str:
    """The local broker's properties (ops.services.kafka.broker_properties), listening on the
    container's every interface and advertising the client listener's mapped address."""
    inside = settings.with_overrides(
        bind=settings.bind.with_overrides(host="0.0.0.0"),
        kafka=settings.kafka.with_overrides(port=KAFKA_PORT),
    )
    props = broker_properties(inside, KAFKA_DATA)
    props["advertised.listeners"] = listener_properties(settings)["advertised.listeners"]
    return "".join(f"{key}={value}\n" for key, value in props.items())


def kafka_start_script(settings: Settings) -> str:
    """Format the storage with the admin's SCRAM credentials, then run the broker."""
    kafka = settings.kafka
    if any(c in kafka.admin_password for c in ",[]="):
        raise ValueError("the admin's password cannot hold , [ ] or = (kafka-storage --add-scram)")
    scram = f"{kafka.sasl_mechanism}=[name={ADMIN},password={kafka.admin_password}]"
    props = f"{KAFKA_DIR}/server.properties"
    format_argv = [
        "/opt/kafka/bin/kafka-storage.sh", "format", "--ignore-formatted",
        "-t", CLUSTER_ID, "-c", props, "--add-scram", scram,
    ]  # fmt: skip
    return (
        "set -e\n"
        f"{shlex.join(format_argv)}\n"
        f"exec /opt/kafka/bin/kafka-server-start.sh {shlex.quote(props)}\n"
    )


def bootstrapped_services(settings: Settings) -> list[Service]:
    """The services whose bootstrap creates something, as ``intellidox up`` orders them;
    Kafka's admin logs in on the client listener (see the module docstring)."""
    return [
        Postgres(settings),
        SeaweedFS(settings),
        Kafka(settings, admin_config=client_config(settings, ADMIN)),
        Cassandra(settings),
    ]


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _containers(base: Settings) -> dict[str, DockerContainer]:
    from testcontainers.core.container import DockerContainer

    wait_for_script = f"while [ ! -f {KAFKA_START} ]; do sleep 0.1; done; exec sh {KAFKA_START}"
    heap = f"-Xms{base.kafka.heap_mb}m -Xmx{base.kafka.heap_mb}m"
    kafka = (
        DockerContainer(KAFKA_IMAGE.format(version=base.kafka.version))
        .with_exposed_ports(KAFKA_PORT)
        .with_env("KAFKA_HEAP_OPTS", heap)
        .with_command(["sh", "-c", wait_for_script])
    )
    pg = base.postgres
    postgres = (
        DockerContainer(POSTGRES_IMAGE)
        .with_exposed_ports(POSTGRES_PORT)
        .with_envs(POSTGRES_USER=pg.user, POSTGRES_PASSWORD=pg.password, POSTGRES_DB=pg.db)
    )
    cassandra = (
        DockerContainer(CASSANDRA_IMAGE)
        .with_exposed_ports(CASSANDRA_PORT)
        .with_envs(MAX_HEAP_SIZE=f"{base.cassandra.heap_mb}M", HEAP_NEWSIZE="200M")
    )
    weed = ["mini", "-dir=/data", f"-s3.port={S3_PORT}", "-s3.config=/etc/intellidox/s3.json"]
    seaweedfs = (
        DockerContainer(SEAWEEDFS_IMAGE)
        .with_exposed_ports(S3_PORT, FILER_GRPC_PORT)
        .with_command([*weed, f"-s3.allowedOrigins={base.s3.allowed_origins}"])
        .with_copy_into_container(s3_identities(base).encode(), "/etc/intellidox/s3.json")
    )
    clamav = (
        DockerContainer(CLAMAV_IMAGE)
        .with_exposed_ports(CLAMD_PORT)
        .with_env("CLAMAV_NO_FRESHCLAMD", "true")
        .with_command(["clamd", "--foreground", "--config-file=/etc/intellidox/clamd.conf"])
        .with_copy_into_container(CLAMD_CONF.encode(), "/etc/intellidox/clamd.conf")
    )
    for signatures in sorted(SIGNATURES.glob("intellidox.*db")):
        clamav.with_copy_into_container(
            signatures, f"/var/lib/intellidox-signatures/{signatures.name}"
        )
    return {
        "kafka": kafka,
        "postgres": postgres,
        "cassandra": cassandra,
        "seaweedfs": seaweedfs,
        "clamav": clamav,
    }


def _wait(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            if ready():
                return
        except Exception:  # not up yet: every client has its own way of saying so
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"testcontainers: {what} not ready after {READY_TIMEOUT_S:.0f}s")
        time.sleep(1.0)


def _wait_ready(settings: Settings) -> None:
    import psycopg

    from ops.clamd import ClamdClient
    from ops.s3 import s3_client
    from ops.services.cassandra import cql_answers
    from ops.services.kafka import broker_answers

    def postgres() -> bool:
        with psycopg.connect(settings.postgres.dsn, connect_timeout=3):
            return True

    def s3() -> bool:
        s3_client(settings).list_buckets()
        return True

    clamd = ClamdClient(host=settings.clamd.host, port=settings.clamd.port, timeout=5)
    _wait("postgres", postgres)
    _wait("seaweedfs", s3)
    _wait("kafka", lambda: broker_answers(client_config(settings, ADMIN, log_level=0)))
    _wait("cassandra", lambda: cql_answers(settings))
    _wait("clamav", clamd.ping)


@contextmanager
def container_settings(base: Settings) -> Iterator[Settings]:
    """Start the containers, bootstrap them as ``intellidox up`` does, yield their settings."""
    if not _docker_answers():
        pytest.skip("INTELLIDOX_TESTCONTAINERS=1 but no Docker engine answers on this machine")
    with ExitStack() as stack:
        # A var directory of its own: nothing of a local runtime on this machine is in play
        # (the clamd socket clients prefer, the Postgres socket the bootstrap would use, the
        # filer's TLS certificates: the container's filer speaks plain gRPC).
        own = base.with_overrides(var_dir=Path(stack.enter_context(TemporaryDirectory())))
        containers = _containers(own)
        started: dict[str, Any] = {
            name: stack.enter_context(container) for name, container in containers.items()
        }
        settings = settings_for(own, started)
        kafka = started["kafka"]  # its advertised address is known only now
        kafka.copy_into_container(
            kafka_properties(settings).encode(), f"{KAFKA_DIR}/server.properties", 0o644
        )
        kafka.copy_into_container(kafka_start_script(settings).encode(), KAFKA_START, 0o755)
        _wait_ready(settings)
        bootstrap_services(bootstrapped_services(settings))
        yield settings
