"""Kafka: the service definition, topic bootstrap, and an Avro event through a real broker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from ops.bootstrap.topics import create_topics, delete_topics
from ops.kafka import client_config, consumer_config, producer_config
from ops.services.kafka import Kafka
from ops.settings import KafkaSettings, Settings, load_settings
from schemas import codec
from schemas.topics import FACT_TOPICS, SCAN_VERDICTS, STATE_TOPICS, dlq

VERDICT = {
    "doc_id": "d-42",
    "tenant": "acme",
    "scanner": "clamav-1",
    "vendor": "clamav",
    "verdict": "clean",
    "result": "OK",
    "engine_version": "1.0.7",
    "signatures_version": "27500",
    "start_at": 1_700_000_000_000,
    "end_at": 1_700_000_000_250,
    "reused_from": None,
}


def _topic_config(settings: Settings, topic: str) -> dict[str, str]:
    admin = AdminClient(client_config(settings))
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=10)
    return {name: entry.value for name, entry in entries.items()}


def _eventually_config(settings: Settings, topic: str, key: str, expected: str) -> None:
    # A config change is applied by the broker from the metadata log, a moment after the
    # admin call returns.
    deadline = time.monotonic() + 10
    while _topic_config(settings, topic)[key] != expected:
        assert time.monotonic() < deadline, f"{topic} {key} never became {expected}"
        time.sleep(0.1)


def _partitions(settings: Settings, topic: str) -> int:
    metadata = AdminClient(client_config(settings)).list_topics(topic, timeout=10)
    return len(metadata.topics[topic].partitions)


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


# -- the service definition (no broker needed) ----------------------------------------------
def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, kafka=KafkaSettings(port=1, partitions=3))
    props = _properties(Kafka(settings).server_properties())
    assert props["process.roles"] == "broker,controller"
    voters = f"1@127.0.0.1:{settings.kafka.controller_port}"  # the controller: loopback only
    assert props["controller.quorum.voters"] == voters
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == "3"
    assert props["log.dirs"].startswith(str(tmp_path / "kafka"))
    assert all(v == "1" for k, v in props.items() if k.endswith("replication.factor"))


def test_server_properties_require_sasl_everywhere_and_deny_by_default(tmp_path: Path) -> None:
    env = {"INTELLIDOX_BIND_HOST": "0.0.0.0", "INTELLIDOX_KAFKA_HOST": "10.0.0.5"}
    settings = load_settings(env).with_overrides(var_dir=tmp_path)
    props = _properties(Kafka(settings).server_properties())
    assert props["listeners"] == (  # clients' listener on the bind address, the rest loopback
        "CLIENT://0.0.0.0:19092,INTERNAL://127.0.0.1:19094,CONTROLLER://127.0.0.1:19093"
    )
    assert props["advertised.listeners"].startswith("CLIENT://10.0.0.5:19092,")  # Kafka's host
    protocols = dict(p.split(":") for p in props["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    assert props["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.internal.sasl.enabled.mechanisms"] == "PLAIN"
    assert props["authorizer.class.name"].endswith(".StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"


def test_an_admin_password_that_would_break_the_jaas_line_is_refused(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, kafka=KafkaSettings(admin_password='a"b'))
    with pytest.raises(ValueError, match="kafka_admin_password"):
        Kafka(settings).server_properties()


@pytest.mark.integration
def test_the_properties_file_with_the_admin_password_is_private(
    settings: Settings, tmp_path: Path
) -> None:
    kafka = Kafka(settings.with_overrides(var_dir=tmp_path))
    kafka.home.mkdir(parents=True)
    kafka.properties_file.write_text("old\n")
    kafka.properties_file.chmod(0o644)
    kafka.configure()  # also formats the (temporary) data directory
    assert kafka.properties_file.stat().st_mode & 0o777 == 0o600
    assert settings.kafka.admin_password in kafka.properties_file.read_text()


def test_launch_uses_heap_setting_and_main_class(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, kafka=KafkaSettings(heap_mb=256))
    argv = Kafka(settings).launch().argv
    assert "-Xmx256m" in argv and "-Xms256m" in argv
    assert argv[-2:] == ["kafka.Kafka", str(tmp_path / "kafka" / "server.properties")]


def test_delete_topics_needs_a_prefix() -> None:
    with pytest.raises(ValueError, match="prefix"):
        delete_topics(Settings(kafka=KafkaSettings(port=1)), "")


# -- against the running broker --------------------------------------------------------------
@pytest.mark.integration
def test_avro_event_round_trip(settings: Settings, kafka_topics: str, run_id: str) -> None:
    topic = kafka_topics + SCAN_VERDICTS
    producer = Producer(producer_config(settings))
    producer.produce(topic, key=str(VERDICT["doc_id"]), value=codec.encode("scan_verdict", VERDICT))
    assert producer.flush(10) == 0

    consumer = Consumer(consumer_config(settings, f"{run_id}-reader"))
    try:
        consumer.subscribe([topic])
        message = None
        deadline = time.monotonic() + 30
        while message is None and time.monotonic() < deadline:
            polled = consumer.poll(1.0)
            if polled is not None and polled.error() is None:
                message = polled
        assert message is not None, f"nothing consumed from {topic} in 30s"
        consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()

    assert message.key() == b"d-42"
    value = message.value()
    assert value is not None and value[0] == 0
    decoded = codec.decode(value, expected="scan_verdict")
    assert decoded["verdict"] == "clean"
    assert round(decoded["end_at"].timestamp() * 1000) == VERDICT["end_at"]


@pytest.mark.integration
def test_topic_configs_follow_the_declaration(kafka_topics: str, settings: Settings) -> None:
    for name in FACT_TOPICS:
        config = _topic_config(settings, kafka_topics + name)
        assert config["retention.ms"] == "-1", name
        assert config["cleanup.policy"] == "delete", name
        assert _partitions(settings, kafka_topics + name) == settings.kafka.partitions
        assert _topic_config(settings, kafka_topics + dlq(name))["retention.ms"] == "-1"
    for name in STATE_TOPICS:
        assert _topic_config(settings, kafka_topics + name)["cleanup.policy"] == "compact"
        assert _partitions(settings, kafka_topics + name) == 1


@pytest.mark.integration
def test_create_topics_is_idempotent_and_repairs_config(
    settings: Settings, kafka_topics: str
) -> None:
    topic = kafka_topics + SCAN_VERDICTS
    admin = AdminClient(client_config(settings))
    drift = ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET)
    drifted = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[drift])
    admin.incremental_alter_configs([drifted])[drifted].result(timeout=10)
    _eventually_config(settings, topic, "retention.ms", "60000")

    assert create_topics(settings, prefix=kafka_topics) == []
    _eventually_config(settings, topic, "retention.ms", "-1")


@pytest.mark.integration
def test_delete_topics_removes_only_the_prefix(
    settings: Settings, kafka_bootstrap: str, run_id: str
) -> None:
    mine, other = f"{run_id}.a.", f"{run_id}.b."
    created = create_topics(settings, prefix=mine, partitions=1)
    create_topics(settings, prefix=other, partitions=1)
    try:
        assert sorted(delete_topics(settings, mine)) == sorted(created)
        remaining = AdminClient(client_config(settings)).list_topics(timeout=10)
        assert not [t for t in remaining.topics if t.startswith(mine)]
        assert any(t.startswith(other) for t in remaining.topics)
    finally:
        delete_topics(settings, other)
