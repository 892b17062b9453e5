"""Kafka client settings shared by every process: partitioning and who the client is.

librdkafka's default partitioner differs from the Java/aiokafka one; ``murmur2_random`` makes a
document's key land on the same partition number whichever client produced it, so one
document's events stay ordered and co-partitioned across topics (Faust tables rely on it).

Every client authenticates (SASL/SCRAM) as the principal of its process's role
(``settings.kafka.role``): ACLs give each role only what it needs (ops/bootstrap/acls.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ops.settings import Settings

ADMIN = "admin"  # the super user: bootstrap, operators' verbs, tests' set-up
GATEWAY = "gateway"
WORKER = "worker"
SCANNER = "scanner"  # every scanner host
ANALYST = "analyst"  # read-only consumers of the facts
ROLES = (ADMIN, GATEWAY, WORKER, SCANNER, ANALYST)
SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")


@dataclass(frozen=True)
class KafkaAuth:
    """One principal's SASL credentials, in the shapes our two client libraries want."""

    username: str
    password: str
    mechanism: str = "SCRAM-SHA-512"

    def confluent(self) -> dict[str, str]:
        return {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": self.mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password,
        }

    def aiokafka(self) -> dict[str, str]:
        return {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }


def principal_name(settings: Settings, role: str) -> str:
    """The Kafka user name of ``role`` (the analyst's is a setting, the others are fixed)."""
    if role not in ROLES:
        raise ValueError(f"unknown Kafka role {role!r}; known: {', '.join(ROLES)}")
    return settings.kafka.analyst_user if role == ANALYST else role


def role_password(settings: Settings, role: str) -> str:
    if role == ANALYST:
        return settings.kafka.analyst_password
    principal_name(settings, role)  # validates the role
    return str(getattr(settings.kafka, f"{role}_password"))


def kafka_auth(settings: Settings, role: str | None = None) -> KafkaAuth:
    """Credentials of ``role`` (default: the process's own, ``settings.kafka.role``)."""
    kafka = settings.kafka
    role = role or kafka.role
    if kafka.sasl_mechanism not in SCRAM_MECHANISMS:
        raise ValueError(
            f"INTELLIDOX_KAFKA_SASL_MECHANISM must be one of {', '.join(SCRAM_MECHANISMS)}"
        )
    return KafkaAuth(
        principal_name(settings, role), role_password(settings, role), kafka.sasl_mechanism
    )


def as_role(settings: Settings, role: str) -> Settings:
    """``settings`` for a process that speaks as ``role`` (gateway, worker, scanner host)."""
    principal_name(settings, role)
    return settings.with_overrides(kafka=settings.kafka.with_overrides(role=role))


def client_config(settings: Settings, role: str | None = None, **extra: Any) -> dict[str, Any]:
    """Where the broker is and who we are: enough for an AdminClient."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka.bootstrap,
        # librdkafka backs off up to 10 s between reconnects: after an outage, clients came
        # back that long after the broker did.  1 s is cheap for a handful of brokers.
        "reconnect.backoff.max.ms": 1000,
        # librdkafka's own lines (broker down, auth failed) through Python logging, so a
        # service writes them as JSON like the rest (served by poll(), as delivery reports).
        "logger": LIBRDKAFKA_LOG,
    }
    config.update(kafka_auth(settings, role).confluent())
    config.update(extra)
    return config


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    config = client_config(settings)
    config.update(
        {
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "acks": "all",
            # A burst (twenty scanners' verdicts on one document, all on its partition) goes
            # out as one or two requests instead of twenty: the broker's cost is per request.
            "linger.ms": 5,
            "compression.type": "lz4",  # aiokafka reads it with cramjam
        }
    )
    config.update(extra)
    return config


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    config = client_config(settings)
    config.update(
        {
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 2000,  # fetch.min.bytes=1: answered as soon as data arrives
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )
    config.update(extra)
    return config


def aio_client_kwargs(settings: Settings) -> dict[str, Any]:
    """``bootstrap_servers`` and SASL keyword arguments for an aiokafka client."""
    return {"bootstrap_servers": settings.kafka.bootstrap, **kafka_auth(settings).aiokafka()}


def topic(settings: Settings, name: str) -> str:
    """The physical topic name (tests and side-by-side environments use a prefix)."""
    return settings.topic_prefix + name


async def aio_partitions(consumer: Any, name: str) -> list[int]:
    """Partition ids of ``name`` for an aiokafka consumer that will ``assign()`` them.

    ``partitions_for_topic`` only knows topics the consumer already tracks, so read the
    cluster metadata afresh instead.
    """
    cluster = await consumer._client.fetch_all_metadata()
    partitions = cluster.partitions_for_topic(name)
    if not partitions:
        raise RuntimeError(
            f"topic {name} does not exist (or this principal may not see it); "
            "run `intellidox up` (it bootstraps topics and ACLs)"
        )
    return sorted(partitions)
