"""Repository defaults work in the local dev runtime only (unit tests plus real starts)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ops.defaults import RepositoryDefaults, refuse_repository_defaults, shipped_defaults
from ops.services.processes import own_processes
from ops.settings import PREFIX, PostgresSettings, S3Settings, Settings, load_settings

GATEWAY_SECRETS = {
    "signing_secret": "s" * 32,
    "s3": S3Settings(access_key="prod-access", secret_key="prod-secret"),
    "postgres": PostgresSettings(password="prod-pg"),
    "dev_api_key": "unused-dev-key",
    "admin_tenants": "ops-admins",
    "metrics_token": "prod-metrics-token",
}


def test_dev_mode_is_off_unless_the_local_runtime_turns_it_on() -> None:
    assert Settings().dev_mode is False
    assert load_settings({}).dev_mode is False
    for process in own_processes(Settings()):
        assert process.launch().env[PREFIX + "DEV_MODE"] == "1"


def test_a_production_gateway_with_repository_defaults_names_every_one() -> None:
    with pytest.raises(RepositoryDefaults) as refused:
        refuse_repository_defaults(Settings(), "gateway")
    message = str(refused.value)
    for name in ("SIGNING_SECRET", "S3_SECRET_KEY", "S3_ACCESS_KEY", "POSTGRES_PASSWORD"):
        assert f"INTELLIDOX_{name}" in message
    assert "INTELLIDOX_DEV_API_KEY" in message and "INTELLIDOX_ADMIN_TENANTS" in message


def test_each_role_checks_what_it_uses() -> None:
    worker = shipped_defaults(Settings(), "worker")
    assert "INTELLIDOX_SIGNING_SECRET" not in worker and "INTELLIDOX_S3_SECRET_KEY" in worker
    scanner = shipped_defaults(Settings(), "scanner")
    assert not any("S3" in n or "POSTGRES" in n for n in scanner)


def test_replaced_secrets_start_and_dev_mode_lets_defaults_through() -> None:
    ready = Settings().with_overrides(**GATEWAY_SECRETS)
    assert [n for n in shipped_defaults(ready, "gateway") if "KAFKA" not in n] == []
    refuse_repository_defaults(Settings(dev_mode=True), "gateway")  # no error


def test_every_role_wants_its_own_metrics_token() -> None:
    for role in ("gateway", "worker", "scanner"):
        assert "INTELLIDOX_METRICS_TOKEN" in shipped_defaults(Settings(), role), role
        chosen = Settings(metrics_token="prod-metrics-token")
        assert "INTELLIDOX_METRICS_TOKEN" not in shipped_defaults(chosen, role), role


def test_the_dev_tenant_is_no_admin_outside_dev_mode() -> None:
    ready = Settings().with_overrides(**{**GATEWAY_SECRETS, "admin_tenants": "ops, dev"})
    assert "INTELLIDOX_ADMIN_TENANTS" in shipped_defaults(ready, "gateway")


@pytest.mark.parametrize(
    ("verb", "setting"),
    [
        (["gateway"], "INTELLIDOX_SIGNING_SECRET"),
        (["worker"], "INTELLIDOX_S3_SECRET_KEY"),
    ],
)
def test_a_real_start_outside_the_runtime_refuses(verb: list[str], setting: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    proc = subprocess.run(
        [sys.executable, "-m", "ops.cli", *verb],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert setting in proc.stderr and "refusing to start" in proc.stderr


def test_the_weak_sandbox_is_for_dev_mode_only() -> None:
    ready = Settings().with_overrides(**GATEWAY_SECRETS, extractor_allow_weak_sandbox=True)
    assert "INTELLIDOX_EXTRACTOR_ALLOW_WEAK_SANDBOX" in shipped_defaults(ready, "gateway")
    assert "INTELLIDOX_EXTRACTOR_ALLOW_WEAK_SANDBOX" in shipped_defaults(ready, "worker")
