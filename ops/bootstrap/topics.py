"""Create (or bring in line) every topic declared in :mod:`schemas.topics`.

Idempotent: existing topics are kept and their config is set to the declaration, so a changed
retention or cleanup policy reaches a running cluster on the next ``intellidox up``.  Partition
counts of existing topics are never changed: that would move keys between partitions and break
per-document ordering.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, untyped so
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from schemas.topics import TopicSpec, topic_specs

TIMEOUT_S = 30.0


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topics(bootstrap: str, prefix: str = "", partitions: int | None = None) -> list[str]:
    """Create the declared topics under ``prefix``; return the names that were new."""
    specs = topic_specs(prefix) if partitions is None else topic_specs(prefix, partitions)
    admin = _admin(bootstrap)
    created, existing = _create(admin, specs)
    _align_configs(admin, [s for s in specs if s.name in existing])
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


def delete_topics(bootstrap: str, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a test's own set); return them."""
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix (that is every topic)")
    admin = _admin(bootstrap)
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
