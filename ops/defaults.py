"""Repository defaults work in the local dev runtime only.

The secrets in ``ops/settings.py`` are public (they are in this repository), so a process that
is not part of the local runtime (``intellidox up`` / ``make run`` and the test stacks, which
set ``INTELLIDOX_DEV_MODE=1`` for their children) refuses to start while any setting it uses
still has its repository value.  Each role checks only what it uses: a scanner host has no
storage or database credentials and is not asked for them.
"""

from __future__ import annotations

import dataclasses

from ops.settings import PREFIX, Settings

# Settings each role uses that must not keep their repository values outside dev mode.
ROLE_SECRETS: dict[str, tuple[str, ...]] = {
    "gateway": (
        "signing_secret",
        "s3_access_key",
        "s3_secret_key",
        "postgres_password",
        "dev_api_key",
        "metrics_token",
    ),
    "worker": ("s3_access_key", "s3_secret_key", "postgres_password", "metrics_token"),
    "scanner": ("metrics_token",),
    "storage-events": ("postgres_password", "metrics_token"),
}
# Kafka passwords of each role (added where the settings declare them).
KAFKA_SECRETS: dict[str, tuple[str, ...]] = {
    "gateway": ("kafka_gateway_password",),
    "worker": ("kafka_worker_password",),
    "scanner": ("kafka_scanner_password",),
    "storage-events": (),  # no Kafka client: its events go out through the gateway's outbox
}


class RepositoryDefaults(SystemExit):
    """Raised at start-up; the message names every setting to change."""


def shipped_defaults(settings: Settings, role: str) -> list[str]:
    """The ``INTELLIDOX_*`` names of ``role``'s settings that still hold repository values."""
    defaults = Settings()
    known = {f.name for f in dataclasses.fields(Settings)}
    names = [n for n in (*ROLE_SECRETS[role], *KAFKA_SECRETS[role]) if n in known]
    found = [n for n in names if getattr(settings, n) == getattr(defaults, n)]
    if role == "gateway" and defaults.dev_tenant in _tenants(settings.admin_tenants):
        found.append("admin_tenants")  # the dev tenant must not be an admin in production
    if role in ("gateway", "worker") and settings.extractor_allow_weak_sandbox:
        found.append("extractor_allow_weak_sandbox")  # scripts without bubblewrap: dev only
    return [PREFIX + name.upper() for name in found]


def _tenants(text: str) -> set[str]:
    return {t.strip() for t in text.split(",") if t.strip()}


def refuse_repository_defaults(settings: Settings, role: str) -> None:
    """Outside dev mode, stop with a message naming each repository default still in use."""
    if settings.dev_mode:
        return
    shipped = shipped_defaults(settings, role)
    if shipped:
        raise RepositoryDefaults(
            f"intellidox {role}: refusing to start outside the local dev runtime with the "
            f"repository defaults (or dev-only settings) of {', '.join(shipped)}: set each of them "
            "(INTELLIDOX_DEV_MODE=1 is only for the local runtime that `intellidox up` starts)"
        )
