"""ops/monitoring/: the alert rules pass promtool and their unit tests, every dashboard query
parses and asks only for metrics a live stack serves, and the README explains every alert."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ops.metrics import scrape
from tests.gateway.client import Api
from tests.plugins.pipeline import Pipeline

MONITORING = Path(__file__).resolve().parents[2] / "ops" / "monitoring"
README = Path(__file__).resolve().parents[2] / "README.md"
RULES = MONITORING / "rules.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
# Series Prometheus makes itself rather than scraping them.
SYNTHETIC = {"up"}
METRIC = re.compile(r"\b((?:intellidox|process)_[a-z0-9_]+|up)\b(?!\s*\()")


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: apt-get install prometheus (ops/setup.sh installs it)"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_the_rules_pass_promtool_check() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in checked.stdout


def test_the_alerts_fire_as_their_unit_tests_say() -> None:
    tested = promtool("test", "rules", "rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load((MONITORING / "rules.test.yml").read_text())["tests"]
    covered = {t["alertname"] for case in cases for t in case["alert_rule_test"]}
    assert covered == set(alert_names()), "every alert needs a unit test"


def test_every_alert_is_explained_in_the_readme() -> None:
    readme = README.read_text()
    assert "## Operating IntelliDox" in readme
    for name in alert_names():
        assert f"#### {name}" in readme, f"README lacks a section on {name}"


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": q.replace("$__rate_interval", "5m")}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def queried_metrics() -> set[str]:
    return {name for query in dashboard_queries() for name in METRIC.findall(query)}


def sample_names(text: str) -> set[str]:
    """Every sample name a family in an exposition can have, with or without samples yet."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "info": ("_info",),
    }
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
        names |= {s.name for s in family.samples}
    return names


def test_the_dashboard_queries_the_kinds_of_metric_operators_need() -> None:
    found = queried_metrics()
    for needed in (
        "intellidox_http_requests_total",
        "intellidox_consumer_group_lag",
        "intellidox_scan_duration_seconds_bucket",
        "intellidox_verdicts_total",
        "intellidox_dlq_pending",
        "intellidox_scanner_heartbeat_age_seconds",
        "intellidox_scanner_engine_info",
        "intellidox_outbox_oldest_age_seconds",
        "intellidox_documents_overdue",
        "intellidox_extraction_failures_total",
    ):
        assert needed in found, needed


@pytest.mark.integration
async def test_every_metric_a_panel_queries_is_served_by_a_live_stack(
    api: Api, pipeline: Pipeline
) -> None:
    ticket = await api.upload("dashboard.txt", b"panels " + uuid.uuid4().hex.encode())
    await api.wait_done(ticket["id"])
    s = pipeline.settings
    served: set[str] = set(SYNTHETIC)
    for port in (s.bind.gateway_port, s.bind.worker_port, s.bind.scanner_port_base):
        served |= sample_names(scrape(f"http://{s.bind.host}:{port}/metrics", s.metrics_token))
    missing = sorted(queried_metrics() - served)
    assert missing == [], f"panels query metrics no process serves: {missing}"


def test_the_sample_names_of_a_family_include_those_without_samples_yet() -> None:
    text = "# HELP x_total t\n# TYPE x_total counter\n# HELP h t\n# TYPE h histogram\n"
    assert {"x_total", "h_bucket", "h_count"} <= sample_names(text)
