"""Versioned, re-runnable Cassandra migrations.

Each ``ops/bootstrap/cassandra/NNNN_name.cql`` file is one version: statements split on ``;``,
``{keyspace}`` replaced by the target keyspace.  A ``schema_migrations`` table inside the
keyspace records what ran.  A version is recorded only after all its statements succeed, so
write statements that are safe to repeat (``IF NOT EXISTS``): a half-applied version simply
runs again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cassandra.cluster import Session

MIGRATIONS_DIR = Path(__file__).with_suffix("")  # the data directory next to this module
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.cql$")
# Unquoted CQL identifiers: letters, digits, underscore, at most 48 characters.
_KEYSPACE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    statements: list[str]


def split_statements(text: str) -> list[str]:
    """The CQL statements in ``text``: ``--``/``//`` comment lines dropped, split on ``;``."""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith(("--", "//"))]
    parts = "\n".join(lines).split(";")
    return [p.strip() for p in parts if p.strip()]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.cql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path}: migration files are named NNNN_snake_case.cql")
        migrations.append(Migration(match[1], path.stem, split_statements(path.read_text())))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {directory}: {versions}")
    return migrations


def check_keyspace(keyspace: str) -> str:
    # The name is spliced into CQL text (identifiers cannot be bound), so validate it.
    if not _KEYSPACE.match(keyspace):
        raise ValueError(f"invalid keyspace name {keyspace!r}")
    return keyspace


def migrate(session: Session, keyspace: str, replication_factor: int = 1) -> list[str]:
    """Create ``keyspace`` if missing and apply pending migrations; return versions applied."""
    ks = check_keyspace(keyspace)
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {int(replication_factor)}}}"
    )
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {ks}.schema_migrations "
        "(version text PRIMARY KEY, name text, applied_at timestamp)"
    )
    done = applied_versions(session, ks)
    applied = []
    for migration in load_migrations():
        if migration.version in done:
            continue
        for statement in migration.statements:
            session.execute(statement.replace("{keyspace}", ks))
        session.execute(
            f"INSERT INTO {ks}.schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
            (migration.version, migration.name, datetime.now(UTC)),
        )
        applied.append(migration.version)
    return applied


def applied_versions(session: Session, keyspace: str) -> set[str]:
    ks = check_keyspace(keyspace)
    return {row.version for row in session.execute(f"SELECT version FROM {ks}.schema_migrations")}


def drop_keyspace(session: Session, keyspace: str) -> None:
    session.execute(f"DROP KEYSPACE IF EXISTS {check_keyspace(keyspace)}")
