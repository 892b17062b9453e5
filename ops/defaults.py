"""Repository defaults work in the local dev runtime only.

The secrets in ``ops/settings.py`` are public (they are in this repository), so a process that
is not part of the local runtime (``intellidox up`` / ``make run`` and the test stacks, which
set ``INTELLIDOX_DEV_MODE=1`` for their children) refuses to start while any setting it uses
still has its repository value.  Each role checks only what it uses: a scanner host has no
storage or database credentials and is not asked for them.
"""

from __future__ import annotations

from ops.settings import PREFIX, Settings, settings_environment

# Settings each role uses that must not keep their repository values outside dev mode (by
# variable name, without the prefix: sections' fields are named as their variables are).
ROLE_SECRETS: dict[str, tuple[str, ...]] = {
    "gateway": (
        "SIGNING_SECRET",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
        "POSTGRES_PASSWORD",
        "DEV_API_KEY",
        "METRICS_TOKEN",
        "KAFKA_GATEWAY_PASSWORD",
    ),
    "worker": (
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
        "POSTGRES_PASSWORD",
        "METRICS_TOKEN",
        "KAFKA_WORKER_PASSWORD",
    ),
    "scanner": ("METRICS_TOKEN", "KAFKA_SCANNER_PASSWORD"),
    # No Kafka client: its events go out through the gateway's outbox.
    "storage-events": ("POSTGRES_PASSWORD", "METRICS_TOKEN"),
}


class RepositoryDefaults(SystemExit):
    """Raised at start-up; the message names every setting to change."""


def shipped_defaults(settings: Settings, role: str) -> list[str]:
    """The ``INTELLIDOX_*`` names of ``role``'s settings that still hold repository values."""
    defaults = Settings()
    ours, shipped = settings_environment(settings), settings_environment(defaults)
    found = [n for n in ROLE_SECRETS[role] if ours[PREFIX + n] == shipped[PREFIX + n]]
    if role == "gateway" and defaults.dev_tenant in _tenants(settings.admin_tenants):
        found.append("ADMIN_TENANTS")  # the dev tenant must not be an admin in production
    if role in ("gateway", "worker") and settings.extractor_allow_weak_sandbox:
        found.append("EXTRACTOR_ALLOW_WEAK_SANDBOX")  # scripts without bubblewrap: dev only
    return [PREFIX + name for name in found]


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
