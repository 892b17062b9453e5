"""Cassandra pieces that need no running node: CQL splitting, shipped migrations, config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ops.bootstrap.cassandra import check_keyspace, load_migrations, split_statements
from ops.services.cassandra import Cassandra
from ops.settings import Settings


def test_split_statements_drops_comments_and_blanks() -> None:
    text = (
        "-- a comment; with a semicolon\nCREATE TABLE a (x int PRIMARY KEY);\n\n// more\n"
        "CREATE TABLE b (\n  y int PRIMARY KEY\n) ;\n;\n"
    )
    assert split_statements(text) == [
        "CREATE TABLE a (x int PRIMARY KEY)",
        "CREATE TABLE b (\n  y int PRIMARY KEY\n)",
    ]


def test_shipped_migrations_are_numbered_and_keyspace_relative() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations][:1] == ["0001"]
    for migration in migrations:
        assert migration.statements
        assert all("{keyspace}." in s for s in migration.statements)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.cql").write_text("SELECT 1;")
    (tmp_path / "0001_b.cql").write_text("SELECT 2;")
    with pytest.raises(ValueError, match="duplicate"):
        load_migrations(tmp_path)


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a;DROP", "x" * 49])
def test_bad_keyspace_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        check_keyspace(name)


def test_configure_writes_a_minimal_yaml_under_home(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", cache_dir=tmp_path / "cache")
    service = Cassandra(settings)
    service.configure()
    config = yaml.safe_load(service.config_file.read_text())
    assert config["native_transport_port"] == settings.cassandra.port
    assert config["storage_port"] == settings.cassandra.storage_port
    assert config["data_file_directories"] == [str(service.storage_dir / "data")]
    assert str(service.home) in config["commitlog_directory"]
    assert service.logback_file.exists()


def test_launch_uses_jdk17_and_the_jamm_agent(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", cache_dir=tmp_path / "cache")
    service = Cassandra(settings)
    service.lib_dir.mkdir(parents=True)
    (service.lib_dir / "jamm-0.4.0.jar").touch()
    argv = service.launch().argv
    assert argv[0] == str(settings.java17_home / "bin" / "java")
    assert f"-javaagent:{service.lib_dir / 'jamm-0.4.0.jar'}" in argv
    assert f"-Dcassandra.jmx.local.port={service.jmx_port}" in argv
    assert argv[-1] == "org.apache.cassandra.service.CassandraDaemon"
