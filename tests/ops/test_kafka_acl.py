"""Kafka principals and ACLs: each role can do its job on the real broker and nothing else.

The topics are a test's own prefix; :func:`ops.bootstrap.topics.create_topics` granted the
prefix's ACLs, so this is what a test stack's gateway, worker and scanners get.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewTopic,
)

from ops.bootstrap.acls import every_acl, grants
from ops.bootstrap.topics import create_topics, delete_topics
from ops.kafka import (
    ADMIN,
    ANALYST,
    GATEWAY,
    ROLES,
    SCANNER,
    WORKER,
    as_role,
    client_config,
    consumer_config,
    kafka_auth,
    producer_config,
)
from ops.settings import Settings, load_settings
from schemas import topics as t

TOPIC_DENIED = KafkaError.TOPIC_AUTHORIZATION_FAILED
GROUP_DENIED = KafkaError.GROUP_AUTHORIZATION_FAILED


def _error_of(exc: BaseException) -> KafkaError:
    """The KafkaError behind an exception (librdkafka chains a fatal one from a callback)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, KafkaException):
        cause = cause.__cause__
    assert cause is not None, f"not a Kafka error: {exc!r}"
    error: KafkaError = cause.args[0]
    return error


def _keep(errors: list[KafkaError], error: KafkaError | None) -> None:
    if error is not None:
        errors.append(error)


def produce(settings: Settings, role: str, name: str) -> KafkaError | None:
    """Produce one record as ``role``; None when the broker acknowledged it."""
    errors: list[KafkaError] = []
    config = producer_config(
        as_role(settings, role), log_level=0, error_cb=errors.append, **{"message.timeout.ms": 8000}
    )
    producer = Producer(config)
    try:
        producer.produce(name, b"v", key=b"k", on_delivery=lambda e, _m: _keep(errors, e))
        left = producer.flush(10)
    except Exception as exc:  # a fatal error (no producer id) surfaces here
        return _error_of(exc)
    if errors:
        return errors[0]
    assert left == 0, f"{role}: produce to {name} neither acknowledged nor refused"
    return None


def consume(settings: Settings, role: str, name: str, group: str) -> KafkaError | None:
    """Read one record of ``name`` as ``role`` in ``group``; None when one arrived."""
    consumer = Consumer(consumer_config(as_role(settings, role), group, log_level=0))
    consumer.subscribe([name])
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                error: KafkaError | None = message.error()
                return error
    finally:
        consumer.close()
    raise AssertionError(f"{role}: nothing and no error from {name} in 20s")


def create_topic(settings: Settings, role: str, name: str) -> KafkaError | None:
    admin = AdminClient(client_config(settings, role))
    try:
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=20)
    except KafkaException as exc:
        return _error_of(exc)
    return None


def code(error: KafkaError | None) -> int | None:
    return None if error is None else error.code()


@pytest.fixture
def prefix(settings: Settings, kafka_topics: str) -> str:
    """The test's topics, with one record in each topic a role reads."""
    for name in (*t.FACT_TOPICS, *t.STATE_TOPICS):
        assert produce(settings, ADMIN, kafka_topics + name) is None
    return kafka_topics


# -- the roles at work -------------------------------------------------------------------------
@pytest.mark.integration
def test_scanner_reads_requests_and_writes_verdicts_registry_and_its_dlq(
    settings: Settings, prefix: str
) -> None:
    assert consume(settings, SCANNER, prefix + t.SCAN_REQUESTS, prefix + "sim-a") is None
    assert consume(settings, SCANNER, prefix + t.SCAN_RESCANS, prefix + "sim-a.rescans") is None
    for name in (
        t.SCAN_VERDICTS,
        t.SCANNERS_REGISTRY,
        t.dlq(t.SCAN_REQUESTS),
        t.dlq(t.SCAN_RESCANS),
    ):
        assert produce(settings, SCANNER, prefix + name) is None, name


@pytest.mark.integration
def test_scanner_is_refused_documents_status_and_the_pipelines_groups(
    settings: Settings, prefix: str
) -> None:
    for name in (t.DOCS_STATUS, t.DOCS_METADATA, t.DOCS_CONFIRMED, t.EXTRACTOR_SCRIPTS):
        assert code(consume(settings, SCANNER, prefix + name, prefix + "sim-a")) == TOPIC_DENIED
    for name in (t.DOCS_STATUS, t.SCAN_REQUESTS, t.EXTRACTOR_SCRIPTS):
        assert code(produce(settings, SCANNER, prefix + name)) == TOPIC_DENIED, name
    for group in ("intellidox-worker", "analyst-x", "extractor-admin-x"):
        refused = consume(settings, SCANNER, prefix + t.SCAN_REQUESTS, prefix + group)
        assert code(refused) == GROUP_DENIED, group
    assert code(create_topic(settings, SCANNER, prefix + "mine")) == TOPIC_DENIED


@pytest.mark.integration
def test_gateway_writes_its_outbox_topics_and_reads_what_its_hub_follows(
    settings: Settings, prefix: str
) -> None:
    for name in (t.DOCS_REQUESTED, t.DOCS_CONFIRMED, t.DOCS_STATUS, t.DOCS_REEXTRACT):
        assert produce(settings, GATEWAY, prefix + name) is None, name
    group = prefix + "extractor-admin-x"
    for name in (t.DOCS_STATUS, t.DOCS_METADATA, t.SCAN_VERDICTS, t.EXTRACTOR_SCRIPTS):
        assert consume(settings, GATEWAY, prefix + name, group) is None, name
    assert code(consume(settings, GATEWAY, prefix + t.SCAN_REQUESTS, group)) == TOPIC_DENIED
    assert code(produce(settings, GATEWAY, prefix + t.SCAN_VERDICTS)) == TOPIC_DENIED


@pytest.mark.integration
def test_worker_runs_the_pipeline_and_creates_only_its_own_topics(
    settings: Settings, prefix: str
) -> None:
    group = prefix + "intellidox-worker"
    for name in (t.DOCS_CONFIRMED, t.SCAN_VERDICTS, t.SCANNERS_REGISTRY, t.EXTRACTOR_SCRIPTS):
        assert consume(settings, WORKER, prefix + name, group) is None, name
    for name in (t.DOCS_METADATA, t.SCAN_REQUESTS, t.DOCS_STATUS, t.dlq(t.DOCS_CONFIRMED)):
        assert produce(settings, WORKER, prefix + name) is None, name
    assert create_topic(settings, WORKER, prefix + "intellidox-worker-progress-changelog") is None
    assert code(create_topic(settings, WORKER, prefix + "elsewhere")) == TOPIC_DENIED
    assert code(produce(settings, WORKER, prefix + t.SCANNERS_REGISTRY)) == TOPIC_DENIED


@pytest.mark.integration
def test_analyst_reads_facts_in_its_own_groups_and_never_writes(
    settings: Settings, prefix: str
) -> None:
    for name in (t.SCAN_VERDICTS, t.DOCS_STATUS, t.DOCS_METADATA):
        assert consume(settings, ANALYST, prefix + name, prefix + "analyst-report") is None
    refused = consume(settings, ANALYST, prefix + t.SCAN_VERDICTS, prefix + "sim-a")
    assert code(refused) == GROUP_DENIED
    assert code(consume(settings, ANALYST, prefix + t.SCAN_REQUESTS, prefix + "analyst-x")) == (
        TOPIC_DENIED
    )
    # Not even an idempotent producer id: it has no WRITE anywhere.
    assert code(produce(settings, ANALYST, prefix + t.SCAN_VERDICTS)) in (
        TOPIC_DENIED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    )


# -- who gets in -------------------------------------------------------------------------------
def _login_errors(config: dict[str, Any]) -> list[KafkaError] | None:
    """None when ``config`` can read metadata, else the errors the client reported."""
    errors: list[KafkaError] = []
    full: dict[str, Any] = {**config, "log_level": 0, "error_cb": errors.append}
    admin = AdminClient(full)
    try:
        admin.list_topics(timeout=5)
        return None
    except KafkaException:
        admin.poll(1)  # delivers the error callbacks
        return errors


@pytest.mark.integration
def test_every_role_logs_in_with_its_own_password(settings: Settings, kafka_bootstrap: str) -> None:
    for role in ROLES:
        assert _login_errors(client_config(settings, role)) is None, role


@pytest.mark.integration
def test_a_client_without_credentials_is_refused(settings: Settings, kafka_bootstrap: str) -> None:
    assert _login_errors({"bootstrap.servers": settings.kafka.bootstrap}) is not None


@pytest.mark.integration
def test_a_wrong_password_is_refused(settings: Settings, kafka_bootstrap: str) -> None:
    wrong = {**client_config(settings, SCANNER), "sasl.password": "not-the-password"}
    errors = _login_errors(wrong)
    assert errors is not None
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors


@pytest.mark.integration
def test_the_client_listener_offers_no_plain_login(
    settings: Settings, kafka_bootstrap: str
) -> None:
    plain = {**client_config(settings, ADMIN), "sasl.mechanism": "PLAIN"}
    errors = _login_errors(plain)
    assert errors is not None
    assert any("Unsupported SASL mechanism" in e.str() for e in errors), errors


@pytest.mark.integration
def test_a_prefixs_acls_go_with_its_topics(settings: Settings, kafka_bootstrap: str) -> None:
    prefix = f"acl{uuid.uuid4().hex[:8]}."
    admin = AdminClient(client_config(settings))

    def mine() -> list[Any]:
        found = admin.describe_acls(every_acl()).result(timeout=10)
        return [b for b in found if b.name.startswith(prefix)]

    create_topics(settings, prefix, partitions=1)
    try:
        principals = {b.principal for b in mine()}
        assert principals == {f"User:{u}" for u in (SCANNER, GATEWAY, WORKER, "analyst")}
        assert len(mine()) == len(grants(prefix, settings.kafka.analyst_user))
    finally:
        delete_topics(settings, prefix)
    assert mine() == []


# -- the grants themselves (no broker) ---------------------------------------------------------
def _names(prefix: str, user: str, operation: str) -> set[str]:
    found = grants(prefix, "analyst")
    return {
        g.name.removeprefix(prefix)
        for g in found
        if g.user == user and g.resource == "topic" and g.operation == operation and g.allow
    }


def test_a_scanner_is_granted_its_six_topics_only() -> None:
    assert _names("p.", SCANNER, "read") == {t.SCAN_REQUESTS, t.SCAN_RESCANS}
    assert _names("p.", SCANNER, "write") == {
        t.SCAN_VERDICTS,
        t.SCANNERS_REGISTRY,
        t.dlq(t.SCAN_REQUESTS),
        t.dlq(t.SCAN_RESCANS),
    }


def test_the_analyst_is_granted_reads_of_facts_only() -> None:
    reads = _names("p.", "analyst", "read")
    assert reads == {name for name in t.FACT_TOPICS if name.startswith("docs.")} | {t.SCAN_VERDICTS}
    assert not [g for g in grants("p.", "analyst") if g.user == "analyst" and g.operation != "read"]


def test_every_grant_stays_under_its_prefix() -> None:
    for grant in grants("stack1.", "analyst"):
        assert grant.name.startswith("stack1."), grant


def test_the_dev_set_lets_scanners_name_their_groups_freely_but_not_the_pipelines() -> None:
    scanner_groups = [
        g for g in grants("", "analyst") if g.user == SCANNER and g.resource == "group"
    ]
    allowed = [g for g in scanner_groups if g.allow]
    assert [(g.name, g.prefixed) for g in allowed] == [("*", False)]
    assert {g.name for g in scanner_groups if not g.allow} >= {"intellidox-", "analyst-"}


def test_each_role_has_its_own_credentials() -> None:
    settings = load_settings({"INTELLIDOX_ANALYST_USER": "ana", "INTELLIDOX_KAFKA_ROLE": "worker"})
    assert kafka_auth(settings).username == "worker"
    assert kafka_auth(settings, ANALYST).username == "ana"
    assert len({kafka_auth(settings, role).password for role in ROLES}) == len(ROLES)
    assert kafka_auth(settings).confluent()["security.protocol"] == "SASL_PLAINTEXT"


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Kafka role"):
        as_role(load_settings({}), "root")
