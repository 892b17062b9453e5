"""The local Prometheus: its generated config, and a real one scraping a live stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.services.processes import own_processes
from ops.services.prometheus import RULES, Prometheus, prometheus_config
from ops.services.runtime import start, stop
from ops.settings import Settings
from ops.stack import free_port
from tests.plugins.pipeline import Pipeline


def test_every_process_is_a_job_scraped_with_the_token_file() -> None:
    settings = Settings(metrics_interval_s=5)
    config = prometheus_config(settings, Path("/run/token"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = {f"intellidox-{p.name}": f"127.0.0.1:{p.port}" for p in own_processes(settings)}
    assert set(jobs) == {*expected, "prometheus"}
    for name, target in expected.items():
        assert jobs[name]["static_configs"] == [{"targets": [target]}]
        assert jobs[name]["authorization"] == {"type": "Bearer", "credentials_file": "/run/token"}
    assert config["global"]["scrape_interval"] == "5s"
    assert config["rule_files"] == [str(RULES)]


def test_the_written_config_passes_promtool_and_keeps_the_token_private(tmp_path: Path) -> None:
    service = Prometheus(Settings(var_dir=tmp_path, metrics_token="t0ken"))
    service.configure()
    assert service.token_file.read_text() == "t0ken"
    assert service.token_file.stat().st_mode & 0o077 == 0
    assert "t0ken" not in service.config_file.read_text()
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus"
    checked = subprocess.run(
        [promtool, "check", "config", str(service.config_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    argv = service.launch().argv
    assert f"--storage.tsdb.path={tmp_path / 'prometheus' / 'data'}" in argv
    assert f"--web.listen-address=127.0.0.1:{service.settings.bind.prometheus_port}" in argv


def api(service: Prometheus, path: str, **query: str) -> Any:
    url = f"{service.url}/api/v1/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["data"]


def wait_for(what: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = what()
        if found:
            return found
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(1)


@pytest.mark.integration
def test_prometheus_scrapes_every_process_of_a_stack_and_loads_the_alerts(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    base = pipeline.settings
    settings = base.with_overrides(
        var_dir=tmp_path, bind=base.bind.with_overrides(prometheus_port=free_port())
    )
    service = Prometheus(settings)
    start(service)
    try:

        def healthy_jobs() -> set[str]:
            targets = api(service, "targets")["activeTargets"]
            return {t["labels"]["job"] for t in targets if t["health"] == "up"}

        jobs = {f"intellidox-{name}" for name in ("worker", "gateway", "scanners")}
        wait_for(lambda: jobs <= healthy_jobs())
        lag = wait_for(
            lambda: api(service, "query", query="intellidox_consumer_group_lag")["result"]
        )
        assert {"clamav", "sim-a", "intellidox-worker"} <= {r["metric"]["group"] for r in lag}
        groups = api(service, "rules")["groups"]
        loaded = {rule["name"] for group in groups for rule in group["rules"]}
        assert loaded == {r["alert"] for g in _rules()["groups"] for r in g["rules"]}
    finally:
        stop(service)
    assert not service.healthy()


def _rules() -> Any:
    return yaml.safe_load(RULES.read_text())
