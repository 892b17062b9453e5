import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg.conninfo
import pytest

import streams.app
from ops.clamd import ClamdClient
from ops.cql import open_cluster
from ops.filer_meta import filer_address
from ops.kafka import aio_client_kwargs, client_config
from ops.s3 import s3_client
from ops.settings import (
    BindSettings,
    KafkaSettings,
    Settings,
    load_settings,
    settings_environment,
)


def test_defaults_match_the_local_runtime() -> None:
    settings = load_settings({})
    assert settings.kafka.bootstrap == "127.0.0.1:19092"
    assert settings.s3.endpoint == "http://127.0.0.1:18333"
    assert "host=127.0.0.1 port=15432" in settings.postgres.dsn
    assert (settings.cassandra.host, settings.cassandra.port) == ("127.0.0.1", 19042)
    assert (settings.clamd.host, settings.clamd.port) == ("127.0.0.1", 13310)
    assert settings.bind == BindSettings(host="127.0.0.1", gateway_port=8080)


def test_prefixed_variables_are_converted_to_the_field_type() -> None:
    settings = load_settings(
        {
            "INTELLIDOX_KAFKA_PORT": "29092",
            "INTELLIDOX_VAR_DIR": "/tmp/x",
            "INTELLIDOX_DEV_MODE": "yes",
            "INTELLIDOX_SCANNER_HEARTBEAT_S": "2.5",
            "KAFKA_PORT": "1",  # unprefixed names are not ours
        }
    )
    assert settings.kafka.port == 29092
    assert settings.var_dir == Path("/tmp/x")
    assert settings.dev_mode is True
    assert settings.scanner_heartbeat_s == 2.5


def test_each_section_reads_its_own_variables() -> None:
    settings = load_settings(
        {
            "INTELLIDOX_POSTGRES_PASSWORD": "pg-secret",
            "INTELLIDOX_CASSANDRA_KEYSPACE": "ks",
            "INTELLIDOX_CASSANDRA_USER": "cass",
            "INTELLIDOX_S3_SECRET_KEY": "s3-secret",
            "INTELLIDOX_CLAMD_PORT": "3310",
            "INTELLIDOX_KAFKA_WORKER_PASSWORD": "w",
            "INTELLIDOX_GATEWAY_PORT": "28080",
            "INTELLIDOX_STORAGE_EVENTS_PORT": "26070",
        }
    )
    assert "password=pg-secret" in settings.postgres.dsn
    assert (settings.cassandra.keyspace, settings.cassandra.user) == ("ks", "cass")
    assert settings.s3.secret_key == "s3-secret"
    assert settings.clamd.port == 3310
    assert settings.kafka.worker_password == "w"
    assert (settings.bind.gateway_port, settings.bind.storage_events_port) == (28080, 26070)


def test_names_kept_from_before_the_sections() -> None:
    settings = load_settings(
        {
            "INTELLIDOX_ANALYST_USER": "alice",
            "INTELLIDOX_ANALYST_PASSWORD": "alice-pw",
            "INTELLIDOX_FILER_GRPC": "filer.internal:18888",
            "INTELLIDOX_FILER_GRPC_CA": "/etc/ca.pem",
        }
    )
    assert (settings.kafka.analyst_user, settings.kafka.analyst_password) == ("alice", "alice-pw")
    assert settings.s3.filer_grpc == "filer.internal:18888"
    assert settings.s3.filer_grpc_ca == "/etc/ca.pem"


def test_each_dependency_has_its_own_host_and_intellidox_host_is_their_default() -> None:
    settings = load_settings(
        {
            "INTELLIDOX_HOST": "10.0.0.9",
            "INTELLIDOX_KAFKA_HOST": "kafka.internal",
            "INTELLIDOX_POSTGRES_HOST": "pg.internal",
            "INTELLIDOX_S3_HOST": "s3.internal",
            "INTELLIDOX_BIND_HOST": "0.0.0.0",
        }
    )
    assert settings.kafka.bootstrap == "kafka.internal:19092"
    assert "host=pg.internal port=15432" in settings.postgres.dsn
    assert settings.s3.endpoint == "http://s3.internal:18333"
    assert settings.cassandra.host == settings.clamd.host == "10.0.0.9"  # not given: the default
    assert settings.bind.host == "0.0.0.0"
    assert load_settings({"INTELLIDOX_HOST": "10.0.0.9"}).bind.host == "10.0.0.9"


def test_each_client_goes_to_its_own_dependencys_host(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "INTELLIDOX_VAR_DIR": str(tmp_path),  # no local clamd socket here: TCP
            "INTELLIDOX_KAFKA_HOST": "kafka.internal",
            "INTELLIDOX_POSTGRES_HOST": "pg.internal",
            "INTELLIDOX_CASSANDRA_HOST": "10.9.0.4",  # the driver resolves names at once
            "INTELLIDOX_S3_HOST": "s3.internal",
            "INTELLIDOX_CLAMD_HOST": "clamd.internal",
            "INTELLIDOX_BIND_HOST": "0.0.0.0",
        }
    )
    assert client_config(settings)["bootstrap.servers"] == "kafka.internal:19092"
    assert aio_client_kwargs(settings)["bootstrap_servers"] == "kafka.internal:19092"
    assert psycopg.conninfo.conninfo_to_dict(settings.postgres.dsn)["host"] == "pg.internal"
    assert open_cluster(settings).contact_points == ["10.9.0.4"]
    assert s3_client(settings).meta.endpoint_url == "http://s3.internal:18333"
    assert filer_address(settings).startswith("s3.internal:")
    assert ClamdClient.from_settings(settings).address == ("clamd.internal", 13310)
    assert settings.gateway_url == "http://0.0.0.0:8080"  # no public URL: the bind address


@pytest.fixture
def worker_app_restored() -> Iterator[None]:
    """The app (and settings) the stages registered on stay the module's after the test."""
    before = {n: v for n, v in vars(streams.app).items() if n in ("app", "settings")}
    yield
    for name in ("app", "settings"):
        vars(streams.app).pop(name, None)
    vars(streams.app).update(before)


@pytest.mark.usefixtures("worker_app_restored")
def test_the_workers_app_uses_kafkas_host_and_listens_on_the_bind_address() -> None:
    env = {"INTELLIDOX_KAFKA_HOST": "kafka.internal", "INTELLIDOX_BIND_HOST": "10.1.2.3"}
    conf = streams.app.create_app(load_settings(env)).conf
    assert [url.host for url in conf.broker] == ["kafka.internal"]
    assert (conf.web_bind, conf.web_port) == ("10.1.2.3", 6066)


def test_a_bad_number_is_an_error_naming_the_value() -> None:
    with pytest.raises(ValueError, match="abc"):
        load_settings({"INTELLIDOX_KAFKA_PORT": "abc"})


def test_settings_and_sections_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.topic_prefix = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        settings.kafka.port = 1  # type: ignore[misc]


def test_a_section_is_overridden_as_a_whole() -> None:
    settings = Settings()
    changed = settings.with_overrides(kafka=settings.kafka.with_overrides(port=1))
    assert changed.kafka == KafkaSettings(port=1)
    assert settings.kafka.port == 19092


def test_every_field_of_every_section_survives_the_child_environment() -> None:
    base = Settings()
    changed = base.with_overrides(
        dev_mode=True,
        meta_cache_s=0.5,
        kafka=base.kafka.with_overrides(host="kafka.internal", port=1, analyst_user="bob"),
        postgres=base.postgres.with_overrides(host="pg.internal", password="p"),
        cassandra=base.cassandra.with_overrides(host="cass.internal", user="u"),
        s3=base.s3.with_overrides(host="s3.internal", filer_grpc="f:1"),
        clamd=base.clamd.with_overrides(host="clamd.internal"),
        bind=base.bind.with_overrides(host="0.0.0.0", worker_port=2),
    )
    assert load_settings(settings_environment(changed)) == changed


def test_a_child_process_rebuilds_the_same_settings_from_its_environment() -> None:
    base = Settings()
    given = base.with_overrides(
        topic_prefix="child.",
        kafka=base.kafka.with_overrides(host="kafka.internal", worker_password="w-pw"),
        postgres=base.postgres.with_overrides(host="pg.internal"),
        bind=base.bind.with_overrides(host="0.0.0.0", gateway_port=18080),
    )
    env = {"PATH": os.environ.get("PATH", ""), **settings_environment(given)}
    script = "import ops.settings as s; print(repr(s.get_settings()))"
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == repr(given), proc.stderr[-2000:]


# Imports every module of the services and the foundation in a fresh interpreter where
# reading settings raises (and a bad INTELLIDOX_KAFKA_PORT would fail any other read); the
# worker's stages after create_app, as the worker imports them.
_IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import ops.settings

def refuse(*args, **kwargs):
    raise AssertionError("settings read at import time")

ops.settings.get_settings = ops.settings.load_settings = refuse
import streams.app
streams.app.create_app(ops.settings.Settings())
for package in ("schemas", "ops", "gateway", "scanners", "streams"):
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        importlib.import_module(info.name)
print("imported", len([m for m in sys.modules if m.startswith(("gateway.", "streams."))]))
"""


def test_importing_the_services_reads_no_settings() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING],
        cwd=root,
        env={"PATH": os.environ.get("PATH", ""), "INTELLIDOX_KAFKA_PORT": "not-a-port"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "imported" in proc.stdout


def test_the_stages_need_the_app_created_first() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import streams.tracker"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "call create_app(settings) before importing the stages" in proc.stderr
