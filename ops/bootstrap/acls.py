"""Who may do what on Kafka: the SCRAM users of the roles, and each role's ACLs on one topic
prefix (the dev set, a test stack).

The broker denies everything not granted (``allow.everyone.if.no.acl.found=false``) and only
``admin`` is a super user.  Grants are literal topic names under the prefix, so stacks that
share a broker never reach each other's topics.  A scanner's consumer group is its scanner's
name, chosen freely on each host, so scanners may use any group under the prefix except the
pipeline's own (denied explicitly: a deny beats an allow).  READ and WRITE imply DESCRIBE; the
worker may DESCRIBE every group under the prefix, to report their lag.
Users are upserted at every bootstrap, so a changed password applies on the next `up`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, untyped so
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from ops.backoff import Backoff, retrying_sync
from ops.kafka import (
    ANALYST,
    GATEWAY,
    ROLES,
    SCANNER,
    WORKER,
    client_config,
    principal_name,
    role_password,
)
from ops.settings import Settings
from schemas import topics as t

TIMEOUT_S = 30.0
LOGIN = Backoff(attempts=None, base_s=0.1, cap_s=1.0)  # a role's new credentials, not yet applied
SCRAM_ITERATIONS = 8192
DOC_FACTS = tuple(name for name in t.FACT_TOPICS if name.startswith("docs."))
WORKER_GROUP = "intellidox-worker"  # the Faust app id; its own topics start with it + "-"
ANALYST_GROUPS = "analyst-"
EXTRACTOR_ADMIN_GROUPS = "extractor-admin-"  # ops/extractor_store.py reads with these
RESERVED_GROUPS = ("intellidox-", ANALYST_GROUPS, EXTRACTOR_ADMIN_GROUPS)

READS: dict[str, tuple[str, ...]] = {
    SCANNER: (t.SCAN_REQUESTS, t.SCAN_RESCANS),
    GATEWAY: (t.DOCS_STATUS, t.DOCS_METADATA, t.SCAN_VERDICTS, t.EXTRACTOR_SCRIPTS),
    WORKER: (*t.FACT_TOPICS, *t.STATE_TOPICS),
    ANALYST: (*DOC_FACTS, t.SCAN_VERDICTS),
}
WRITES: dict[str, tuple[str, ...]] = {
    SCANNER: (
        t.SCAN_VERDICTS,
        t.SCANNERS_REGISTRY,
        t.dlq(t.SCAN_REQUESTS),
        t.dlq(t.SCAN_RESCANS),
    ),
    GATEWAY: (  # the outbox, and the extractor admin API
        t.DOCS_REQUESTED,
        t.DOCS_CONFIRMED,
        t.DOCS_STATUS,
        t.EXTRACTOR_SCRIPTS,
        t.DOCS_REEXTRACT,
    ),
    WORKER: (
        t.DOCS_METADATA,
        t.SCAN_REQUESTS,
        t.SCAN_VERDICTS,
        t.DOCS_STATUS,
        t.SCAN_RESCANS,
        *(t.dlq(name) for name in t.FACT_TOPICS),
    ),
    ANALYST: (),
}


@dataclass(frozen=True)
class Grant:
    """One ACL: ``user`` may (or, with ``allow=False``, may not) do ``operation``."""

    user: str
    resource: str  # "topic" | "group"
    name: str
    operation: str  # "read" | "write" | "create" | "describe" | "all"
    prefixed: bool = False
    allow: bool = True

    def binding(self) -> AclBinding:
        return AclBinding(
            ResourceType[self.resource.upper()],
            self.name,
            ResourcePatternType.PREFIXED if self.prefixed else ResourcePatternType.LITERAL,
            f"User:{self.user}",
            "*",
            AclOperation[self.operation.upper()],
            AclPermissionType.ALLOW if self.allow else AclPermissionType.DENY,
        )

    def filter(self) -> AclBindingFilter:
        b = self.binding()
        return AclBindingFilter(
            b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
            b.permission_type,
        )  # fmt: skip


def grants(prefix: str, analyst_user: str) -> list[Grant]:
    """Every role's grants on the topics and groups under ``prefix``."""
    users = {SCANNER: SCANNER, GATEWAY: GATEWAY, WORKER: WORKER, ANALYST: analyst_user}
    topic_grants = [
        Grant(users[role], "topic", prefix + name, op)
        for table, op in ((READS, "read"), (WRITES, "write"))
        for role, names in table.items()
        for name in names
    ]
    return [*topic_grants, *_group_grants(prefix, analyst_user), *_worker_topics(prefix)]


def _group_grants(prefix: str, analyst_user: str) -> list[Grant]:
    # A broker rejects an empty prefixed name: the dev set (no prefix) allows every group.
    scanners = Grant(SCANNER, "group", prefix or "*", "read", prefixed=bool(prefix))
    denied = [
        Grant(SCANNER, "group", prefix + name, "all", prefixed=True, allow=False)
        for name in RESERVED_GROUPS
    ]
    return [
        scanners,
        *denied,
        Grant(GATEWAY, "group", prefix + EXTRACTOR_ADMIN_GROUPS, "read", prefixed=True),
        Grant(WORKER, "group", prefix + WORKER_GROUP, "read"),
        # The worker reports every group's lag (ops/kafka_lag.py): it may look, not join.
        Grant(WORKER, "group", prefix or "*", "describe", prefixed=bool(prefix)),
        Grant(analyst_user, "group", prefix + ANALYST_GROUPS, "read", prefixed=True),
    ]


def _worker_topics(prefix: str) -> list[Grant]:
    """Faust creates and uses its own topics (table changelogs, the assignor's leader topic)."""
    own = prefix + WORKER_GROUP + "-"
    return [Grant(WORKER, "topic", own, op, prefixed=True) for op in ("create", "read", "write")]


def every_acl() -> AclBindingFilter:
    """A filter that matches every ACL (``None`` is the wildcard; the stubs do not say so)."""
    anything: Any = None
    return AclBindingFilter(
        ResourceType.ANY, anything, ResourcePatternType.ANY, anything, anything,
        AclOperation.ANY, AclPermissionType.ANY,
    )  # fmt: skip


def grant_acls(admin: AdminClient, prefix: str, analyst_user: str) -> None:
    """Create the grants of ``prefix`` (idempotent: an existing ACL is left as it is)."""
    bindings = [g.binding() for g in grants(prefix, analyst_user)]
    for future in admin.create_acls(bindings, request_timeout=TIMEOUT_S).values():
        future.result()
    _wait_applied(admin, set(bindings))


def _wait_applied(admin: AdminClient, bindings: set[AclBinding]) -> None:
    # The controller has committed them; the broker's authorizer applies them from the
    # metadata log a moment later, and a process started right now must not be refused.
    deadline = time.monotonic() + TIMEOUT_S
    while not bindings <= set(admin.describe_acls(every_acl()).result(timeout=TIMEOUT_S)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"ACLs not applied after {TIMEOUT_S:.0f}s")
        time.sleep(0.1)


def revoke_acls(admin: AdminClient, prefix: str, analyst_user: str) -> None:
    """Delete exactly the grants :func:`grant_acls` made for ``prefix``."""
    if not prefix:
        raise ValueError("refusing to revoke the ACLs of the unprefixed (dev) topics")
    filters = [g.filter() for g in grants(prefix, analyst_user)]
    for future in admin.delete_acls(filters, request_timeout=TIMEOUT_S).values():
        future.result()


def ensure_users(admin: AdminClient, settings: Settings) -> None:
    """Create or update the SCRAM user of every role with its password from ``settings``."""
    info = ScramCredentialInfo(
        ScramMechanism[settings.kafka.sasl_mechanism.replace("-", "_")], SCRAM_ITERATIONS
    )
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(
            principal_name(settings, role), info, role_password(settings, role).encode()
        )
        for role in ROLES
    ]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result()


def wait_logins(settings: Settings, timeout_s: float = TIMEOUT_S) -> None:
    """Return once every role can log in on the client listener (the broker applies new
    credentials from the metadata log a moment after the controller accepted them)."""
    window = dataclasses.replace(LOGIN, window_s=timeout_s)
    for role in ROLES:
        admin = AdminClient(client_config(settings, role, log_level=0))
        retrying_sync(functools.partial(admin.list_topics, timeout=2), [(KafkaException, window)])
