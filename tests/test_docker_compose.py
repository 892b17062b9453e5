"""docker-compose.yml cannot run here (no Docker engine), but it must parse and stay complete."""

from pathlib import Path

import yaml

from ops.services import SERVICE_NAMES

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def test_compose_names_every_service_ops_starts_with_a_healthcheck() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in SERVICE_NAMES:
        assert name in services, f"docker-compose.yml lacks {name}"
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_compose_files_it_mounts_exist() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (COMPOSE.parent / source).exists(), source


def test_compose_kafka_requires_sasl_and_acls_on_loopback_listeners() -> None:
    env = yaml.safe_load(COMPOSE.read_text())["services"]["kafka"]["environment"]
    listeners = env["KAFKA_LISTENERS"].split(",")
    assert all("://127.0.0.1:" in listener for listener in listeners), listeners
    protocols = {p.split(":")[1] for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")}
    assert protocols == {"SASL_PLAINTEXT"}
    assert env["KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:admin"


def test_compose_services_on_the_host_network_bind_loopback() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert "listen_addresses=127.0.0.1" in services["postgres"]["command"]
    assert "-ip.bind=127.0.0.1" in services["seaweedfs"]["command"]
    cassandra = services["cassandra"]["environment"]
    assert (
        cassandra["CASSANDRA_LISTEN_ADDRESS"] == cassandra["CASSANDRA_RPC_ADDRESS"] == "127.0.0.1"
    )
    clamd = (COMPOSE.parent / "ops" / "compose" / "clamd.conf").read_text()
    assert "TCPAddr 127.0.0.1" in clamd


def test_compose_prometheus_scrapes_what_intellidox_up_scrapes() -> None:
    from ops.services.prometheus import prometheus_config
    from ops.settings import Settings

    compose = COMPOSE.parent / "ops" / "compose"
    config = yaml.safe_load((compose / "prometheus.yml").read_text())
    etc = Path("/etc/prometheus")
    assert config == prometheus_config(Settings(), etc / "metrics.token", etc / "rules.yml")
    assert (compose / "metrics.token").read_text() == Settings().metrics_token
