"""Create (or bring in line) every topic declared in :mod:`schemas.topics`, and its ACLs.

Idempotent: existing topics are kept and their config is set to the declaration, so a changed
retention or cleanup policy reaches a running cluster on the next ``intellidox up``.  Partition
counts of existing topics are never changed: that would move keys between partitions and break
per-document ordering.  Each role's ACLs on the prefix (ops/bootstrap/acls.py) are granted
with the topics and revoked with them, so a test stack's processes work on their own topics and
nothing is left behind.  The admin client is the ``admin`` principal unless one is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, untyped so
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from ops.bootstrap.acls import grant_acls, revoke_acls
from ops.kafka import ADMIN, client_config
from ops.settings import Settings
from schemas.topics import TopicSpec, topic_specs

TIMEOUT_S = 30.0


def _admin(settings: Settings, config: dict[str, Any] | None) -> AdminClient:
    return AdminClient(config or client_config(settings, ADMIN))


def create_topics(
    settings: Settings,
    prefix: str = "",
    partitions: int | None = None,
    admin_config: dict[str, Any] | None = None,
) -> list[str]:
    """Create the declared topics under ``prefix`` and grant their ACLs; return the new ones."""
    specs = topic_specs(prefix) if partitions is None else topic_specs(prefix, partitions)
    admin = _admin(settings, admin_config)
    created, existing = _create(admin, specs)
    _align_configs(admin, [s for s in specs if s.name in existing])
    grant_acls(admin, prefix, settings.kafka.analyst_user)
    _wait_visible(admin, {s.name for s in specs})
    return created


def _create(admin: AdminClient, specs: list[TopicSpec]) -> tuple[list[str], set[str]]:
    new = [NewTopic(s.name, s.partitions, 1, config=s.config()) for s in specs]
    created: list[str] = []
    existing: set[str] = set()
    for name, future in admin.create_topics(new, request_timeout=TIMEOUT_S).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            existing.add(name)
    return created, existing


def _align_configs(admin: AdminClient, specs: list[TopicSpec]) -> None:
    if not specs:
        return
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            s.name,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in s.config().items()
            ],
        )
        for s in specs
    ]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(timeout=TIMEOUT_S)


def _wait_visible(admin: AdminClient, names: set[str]) -> None:
    # CreateTopics/DeleteTopics return once the controller has committed; the broker's
    # metadata can lag a moment behind, and callers (tests) act on the names straight away.
    _wait_metadata(admin, lambda topics: names <= topics, f"topics not visible: {sorted(names)}")


def _wait_gone(admin: AdminClient, names: set[str]) -> None:
    _wait_metadata(admin, lambda topics: not names & topics, f"topics not gone: {sorted(names)}")


def _wait_metadata(admin: AdminClient, done: Callable[[set[str]], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done(set(admin.list_topics(timeout=TIMEOUT_S).topics)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {TIMEOUT_S:.0f}s")
        time.sleep(0.1)


def delete_topics(settings: Settings, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a test's own set) and the
    prefix's ACLs; return the topics."""
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix (that is every topic)")
    admin = _admin(settings, None)
    revoke_acls(admin, prefix, settings.kafka.analyst_user)
    names = [t for t in admin.list_topics(timeout=TIMEOUT_S).topics if t.startswith(prefix)]
    if not names:
        return []
    for future in admin.delete_topics(names, operation_timeout=TIMEOUT_S).values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
    _wait_gone(admin, set(names))
    return names
