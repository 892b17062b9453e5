"""The testcontainers path without Docker: what it points the tests at, how it configures the
broker, and that it bootstraps with what ``intellidox up`` runs.  (Starting the containers needs
a Docker engine; our machines have none, so that part is not exercised here.)"""

from __future__ import annotations

from typing import Any

import pytest

from ops.filer_meta import tls_files
from ops.kafka import ADMIN, client_config
from ops.services import bootstrap_services, runtime
from ops.services.kafka import CLUSTER_ID, Kafka, broker_properties, internal_admin_config
from ops.settings import Settings
from tests.plugins import containers
from tests.plugins.containers import (
    CASSANDRA_PORT,
    CLAMD_PORT,
    FILER_GRPC_PORT,
    KAFKA_PORT,
    POSTGRES_PORT,
    S3_PORT,
    kafka_properties,
    kafka_start_script,
    settings_for,
)


class FakeContainer:
    """A started container: a host, and a distinct mapped port for each container port."""

    def __init__(self, host: str, offset: int) -> None:
        self.host, self.offset = host, offset
        self.copied: dict[str, bytes] = {}

    def get_container_host_ip(self) -> str:
        return self.host

    def get_exposed_port(self, port: int) -> int:
        return 40000 + self.offset + port % 1000

    def copy_into_container(self, data: bytes, path: str, mode: int = 0o644) -> None:
        self.copied[path] = data

    def __enter__(self) -> FakeContainer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


NAMES = ("kafka", "postgres", "cassandra", "seaweedfs", "clamav")


def _fakes() -> dict[str, FakeContainer]:
    return {name: FakeContainer(f"{name}.docker", 100 * i) for i, name in enumerate(NAMES)}


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_every_section_points_at_its_containers_mapped_port() -> None:
    base = Settings()
    fakes = _fakes()
    s = settings_for(base, fakes)
    expected = {
        "kafka": (s.kafka.host, s.kafka.port, KAFKA_PORT),
        "postgres": (s.postgres.host, s.postgres.port, POSTGRES_PORT),
        "cassandra": (s.cassandra.host, s.cassandra.port, CASSANDRA_PORT),
        "seaweedfs": (s.s3.host, s.s3.port, S3_PORT),
        "clamav": (s.clamd.host, s.clamd.port, CLAMD_PORT),
    }
    for name, (host, port, inside) in expected.items():
        assert (host, port) == (f"{name}.docker", fakes[name].get_exposed_port(inside)), name
    assert s.s3.filer_grpc == f"seaweedfs.docker:{fakes['seaweedfs'].get_exposed_port(18888)}"
    assert FILER_GRPC_PORT == 18888
    assert s.kafka.bootstrap.startswith("kafka.docker:")
    assert s.postgres.dsn.startswith(f"host=postgres.docker port={s.postgres.port} ")
    assert s.bind == base.bind  # our own processes still listen here
    assert (s.kafka.admin_password, s.postgres.password) == (
        base.kafka.admin_password,
        base.postgres.password,
    )


def test_the_container_broker_is_configured_as_the_local_one_but_where_it_listens() -> None:
    s = settings_for(Settings(), _fakes())
    props = _properties(kafka_properties(s))
    local = broker_properties(s, "/anywhere")
    differs = {"listeners", "advertised.listeners", "log.dirs"}
    assert {k: v for k, v in props.items() if k not in differs} == {
        k: v for k, v in local.items() if k not in differs
    }
    assert props["listeners"].startswith(f"CLIENT://0.0.0.0:{KAFKA_PORT},INTERNAL://127.0.0.1:")
    assert props["advertised.listeners"].startswith(f"CLIENT://{s.kafka.bootstrap},")
    assert props["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"


def test_the_container_broker_formats_its_storage_with_the_admins_scram_login() -> None:
    s = settings_for(Settings(), _fakes())
    script = kafka_start_script(s)
    assert f"-t {CLUSTER_ID}" in script
    assert f"--add-scram 'SCRAM-SHA-512=[name=admin,password={s.kafka.admin_password}]'" in script
    assert "exec /opt/kafka/bin/kafka-server-start.sh" in script
    odd = s.with_overrides(kafka=s.kafka.with_overrides(admin_password="a,b"))
    with pytest.raises(ValueError, match="--add-scram"):
        kafka_start_script(odd)


def test_the_path_bootstraps_with_what_intellidox_up_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert containers.bootstrap_services is runtime.bootstrap_services is bootstrap_services
    fakes = _fakes()
    bootstrapped: list[Any] = []
    monkeypatch.setattr(containers, "_docker_answers", lambda: True)
    monkeypatch.setattr(containers, "_containers", lambda base: fakes)
    monkeypatch.setattr(containers, "_wait_ready", lambda settings: None)
    monkeypatch.setattr(containers, "bootstrap_services", bootstrapped.extend)
    with containers.container_settings(Settings()) as s:
        assert s == settings_for(Settings(var_dir=s.var_dir), fakes)
        assert s.var_dir != Settings().var_dir and s.var_dir.is_dir()  # its own, for the session
        assert tls_files(s) is None  # storage-events: the container's filer speaks plain gRPC
        names = [service.name for service in bootstrapped]
        assert names == ["postgres", "seaweedfs", "kafka", "cassandra"]  # as `up` orders them
        assert all(service.settings == s for service in bootstrapped)
        kafka = bootstrapped[2]
        assert kafka.admin_config == client_config(s, ADMIN)  # SCRAM, on the mapped port
        copied = fakes["kafka"].copied
        assert _properties(copied["/etc/intellidox/server.properties"].decode()) == (
            _properties(kafka_properties(s))
        )
        assert copied["/etc/intellidox/start.sh"].decode() == kafka_start_script(s)


def test_without_docker_the_path_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "_docker_answers", lambda: False)
    started = containers.container_settings(Settings())
    with pytest.raises(pytest.skip.Exception, match="no Docker engine"), started:
        pass


def test_kafkas_bootstrap_is_admin_on_the_internal_listener_unless_given_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import confluent_kafka.admin

    from ops.bootstrap import acls, topics

    used: list[dict[str, Any]] = []
    monkeypatch.setattr(confluent_kafka.admin, "AdminClient", lambda config: config)
    monkeypatch.setattr(acls, "ensure_users", lambda admin, settings: used.append(admin))
    monkeypatch.setattr(acls, "wait_logins", lambda settings: None)
    monkeypatch.setattr(topics, "create_topics", lambda *a, **kw: used.append(kw["admin_config"]))
    s = Settings()
    Kafka(s).bootstrap()
    assert used == [internal_admin_config(s)] * 2
    used.clear()
    given = client_config(s, ADMIN)
    Kafka(s, admin_config=given).bootstrap()
    assert used == [given] * 2
