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
