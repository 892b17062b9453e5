"""Prometheus from Debian as a plain process, scraping every IntelliDox process.

Debian's package would start its own systemd unit with ``/etc/prometheus``; we run the binary
ourselves instead, with a generated config and the data under ``<var_dir>/prometheus``.  The
config scrapes the worker, the gateway and the scanner host that ``intellidox up`` starts
(their /metrics want the metrics token, read from a file only the owner can read) and loads
the alert rules straight from ``ops/monitoring/rules.yml``, so an edited rule applies on the
next start.  The web UI (graphs, /alerts) listens on ``settings.bind.host`` only.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from ops.services.base import Launch, Service, require_command
from ops.services.processes import own_processes
from ops.settings import Settings

MONITORING_DIR = Path(__file__).resolve().parent.parent / "monitoring"
RULES = MONITORING_DIR / "rules.yml"
RETENTION = "15d"


def job_name(process: str) -> str:
    return f"intellidox-{process}"


def prometheus_config(settings: Settings, token_file: Path, rules: Path = RULES) -> dict[str, Any]:
    """The whole config: one job per IntelliDox process, and Prometheus itself."""
    every = f"{max(1, round(settings.metrics_interval_s))}s"  # as fresh as the probes
    auth = {"type": "Bearer", "credentials_file": str(token_file)}
    jobs = [
        {
            "job_name": job_name(process.name),
            "authorization": dict(auth),  # a copy each: no YAML anchors
            "static_configs": [{"targets": [f"{settings.bind.host}:{process.port}"]}],
        }
        for process in own_processes(settings)
    ]
    itself = {
        "job_name": "prometheus",
        "static_configs": [{"targets": [f"{settings.bind.host}:{settings.bind.prometheus_port}"]}],
    }
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": [str(rules)],
        "scrape_configs": [*jobs, itself],
    }


class Prometheus(Service):
    name = "prometheus"
    start_timeout_s = 60.0

    @property
    def config_file(self) -> Path:
        return self.home / "prometheus.yml"

    @property
    def token_file(self) -> Path:
        return self.home / "metrics.token"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def url(self) -> str:
        return f"http://{self.settings.bind.host}:{self.settings.bind.prometheus_port}"

    def ports(self) -> list[int]:
        return [self.settings.bind.prometheus_port]

    def check_prerequisites(self) -> None:
        require_command("prometheus", "apt-get install -y prometheus (ops/setup.sh does)")

    def configure(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as token:
            token.write(self.settings.metrics_token)
        config = prometheus_config(self.settings, self.token_file)
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def launch(self) -> Launch:
        binary = shutil.which("prometheus") or "prometheus"
        return Launch(
            [
                binary,
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.data_dir}",
                f"--storage.tsdb.retention.time={RETENTION}",
                f"--web.listen-address={self.settings.bind.host}:{self.settings.bind.prometheus_port}",
                "--log.level=warn",
            ]
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False
