"""PostgreSQL 15 from Debian as a plain process: one cluster under ``<var_dir>/postgres/``.

Postgres refuses to run as root, so when we are root both ``initdb`` and the server run as
the ``postgres`` OS user and the data and socket directories belong to it.  Locally the
superuser ``postgres`` connects over the unix socket (``trust``, the socket directory is
0700 so only its owner and root can reach it); everyone else uses TCP with a scram password.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from ops.services.base import Launch, PrerequisiteMissing, Service, ServiceFailed

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
OS_USER = "postgres"  # the account the server runs as when we are root

HBA = """\
# Written by ops/services/postgres.py on every start; edits are overwritten.
local   all   all                  trust
host    all   all   0.0.0.0/0      scram-sha-256
host    all   all   ::/0           scram-sha-256
"""


class Postgres(Service):
    name = "postgres"
    start_timeout_s = 60.0

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    def ports(self) -> list[int]:
        return [self.settings.postgres.port]

    def check_prerequisites(self) -> None:
        if not (PG_BIN / "postgres").exists() or not (PG_BIN / "initdb").exists():
            raise PrerequisiteMissing(
                f"PostgreSQL 15 is not installed (no {PG_BIN}/postgres): "
                "apt-get install -y postgresql-15"
            )
        if _as_root():
            try:
                pwd.getpwnam(OS_USER)
            except KeyError as exc:
                raise PrerequisiteMissing(
                    f"running as root needs the '{OS_USER}' OS user: "
                    "apt-get install -y postgresql-15"
                ) from exc

    def configure(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        (self.data_dir / "pg_hba.conf").write_text(HBA)
        self._own(self.socket_dir, self.data_dir / "pg_hba.conf")

    def launch(self) -> Launch:
        # Settings go on the command line, so a changed port or host needs no re-init.
        options = {
            "port": str(self.settings.postgres.port),
            "listen_addresses": self.settings.bind.host,
            "unix_socket_directories": str(self.socket_dir),
            "shared_buffers": "64MB",  # a dev box shares 2 cores and little RAM with JVMs
            "max_connections": "100",
            "logging_collector": "off",  # stderr goes to the supervisor's log file
            "password_encryption": "scram-sha-256",
        }
        argv = [str(PG_BIN / "postgres"), "-D", str(self.data_dir)]
        for key, value in options.items():
            argv += ["-c", f"{key}={value}"]
        return Launch(argv=argv, user=OS_USER if _as_root() else None, env={"LC_ALL": "C"})

    def healthy(self) -> bool:
        try:
            with self.superuser_connect(connect_timeout=1):
                return True
        except psycopg.Error:
            return False

    def bootstrap(self) -> None:
        from ops.bootstrap.postgres import migrate

        if (self.socket_dir / f".s.PGSQL.{self.settings.postgres.port}").exists():
            self._ensure_role_and_database()
        # Migrate as the application role over TCP: also proves its password works.
        with psycopg.connect(self.settings.postgres.dsn, connect_timeout=5) as conn:
            migrate(conn)

    # -- helpers ----------------------------------------------------------------------------
    def superuser_connect(
        self, dbname: str = "postgres", connect_timeout: int = 5
    ) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.settings.postgres.port,
            user=SUPERUSER,
            dbname=dbname,
            connect_timeout=connect_timeout,
            autocommit=True,
        )

    def _initdb(self) -> None:
        if self.data_dir.exists():  # a half-finished earlier initdb: start over
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(mode=0o700)
        self._own(self.data_dir)
        argv = [
            str(PG_BIN / "initdb"),
            "-D", str(self.data_dir),
            "-U", SUPERUSER,
            "-E", "UTF8",
            "--no-locale",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ]  # fmt: skip
        done = subprocess.run(
            argv,
            user=OS_USER if _as_root() else None,
            group=OS_USER if _as_root() else None,  # not root's group 0
            extra_groups=[] if _as_root() else None,
            cwd=self.home,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ServiceFailed(f"postgres: initdb failed: {done.stderr.strip()[-2000:]}")

    def _own(self, *paths: Path) -> None:
        """Hand paths to the server's OS user (only needed, and only possible, as root)."""
        if not _as_root():
            return
        user = pwd.getpwnam(OS_USER)
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _ensure_role_and_database(self) -> None:
        s = self.settings
        with self.superuser_connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [s.postgres.user])
            verb = "ALTER" if exists.fetchone() else "CREATE"
            # Always (re)set the password so a changed INTELLIDOX_POSTGRES_PASSWORD applies.
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                    sql.SQL(verb), sql.Identifier(s.postgres.user), sql.Literal(s.postgres.password)
                )
            )
            db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [s.postgres.db])
            if db.fetchone() is None:
                conn.execute(
                    sql.SQL(
                        "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0"
                    ).format(sql.Identifier(s.postgres.db), sql.Identifier(s.postgres.user))
                )


def _as_root() -> bool:
    return os.geteuid() == 0
