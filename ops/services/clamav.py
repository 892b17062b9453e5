"""clamd from Debian as a plain process, loading only the signatures the project ships.

freshclam cannot reach the mirrors from dev machines, so the database is ``ops/clamav/``
(EICAR and our own test and PDF signatures), copied to ``<home>/db`` on every start.  As
root, clamd runs as the ``clamav`` OS user: it parses untrusted files and needs no privilege.
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from ops.clamd import ClamdClient, ClamdError
from ops.services.base import Launch, PrerequisiteMissing, Service, require_command

SIGNATURES_DIR = Path(__file__).resolve().parent.parent / "clamav"
SIGNATURE_SUFFIXES = (".hdb", ".hsb", ".ndb", ".ldb", ".cdb", ".ign2")
OS_USER = "clamav"

# Limits sized for documents up to 1 GiB (the gateway's upload cap) with headroom.  ClamAV
# cannot scan files over 2 GiB; past MaxFileSize/MaxScanSize it would silently answer OK,
# so AlertExceedsMax turns that into a "Heuristics.Limits.Exceeded" detection instead.
LIMITS = {
    "StreamMaxLength": "1100M",
    "MaxFileSize": "1100M",
    "MaxScanSize": "2000M",
    "AlertExceedsMax": "yes",
}


class ClamAV(Service):
    name = "clamav"
    start_timeout_s = 90.0  # two busy cores shared with JVMs; our database itself is tiny

    @property
    def db_dir(self) -> Path:
        return self.home / "db"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def config_file(self) -> Path:
        return self.home / "clamd.conf"

    def ports(self) -> list[int]:
        return [self.settings.clamd.port]

    def check_prerequisites(self) -> None:
        require_command("clamd", "apt-get install -y clamav-daemon")
        if not any(SIGNATURES_DIR.glob("*.?db")):
            raise PrerequisiteMissing(f"no signatures in {SIGNATURES_DIR} (a broken checkout?)")

    def configure(self) -> None:
        for directory in (self.home, self.db_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._copy_signatures()
        self.config_file.write_text(self.render_config())
        # The socket goes in home, so the server's user must own home, db and tmp.
        self._own(self.home, self.db_dir, self.tmp_dir, *self.db_dir.iterdir())

    def render_config(self) -> str:
        s = self.settings
        options = {
            "Foreground": "yes",  # the supervisor owns the process; logs go to stderr
            "LogSyslog": "no",
            "LogTime": "yes",
            "LocalSocket": str(s.clamd_socket),
            "LocalSocketMode": "660",
            "FixStaleSocket": "yes",
            "TCPSocket": str(s.clamd.port),
            "TCPAddr": s.bind.host,
            "DatabaseDirectory": str(self.db_dir),
            "TemporaryDirectory": str(self.tmp_dir),
            "OfficialDatabaseOnly": "no",
            "ConcurrentDatabaseReload": "no",  # a reload would hold two databases in RAM
            "SelfCheck": "600",
            "MaxThreads": "4",
            "ReadTimeout": "120",
            "CommandReadTimeout": "30",
            **LIMITS,
        }
        lines = ["# Written by ops/services/clamav.py on every start; edits are overwritten."]
        lines += [f"{key} {value}" for key, value in options.items()]
        return "\n".join(lines) + "\n"

    def launch(self) -> Launch:
        argv = [require_command("clamd", ""), f"--config-file={self.config_file}"]
        return Launch(argv=argv, user=OS_USER if _runs_as_clamav() else None)

    def healthy(self) -> bool:
        try:
            return ClamdClient(socket_path=self.settings.clamd_socket, timeout=2).ping()
        except ClamdError:
            return False

    def _copy_signatures(self) -> None:
        # Replace the whole set so a signature removed from the repo disappears too.
        for old in self.db_dir.iterdir():
            if old.suffix in SIGNATURE_SUFFIXES:
                old.unlink()
        for sig in sorted(SIGNATURES_DIR.iterdir()):
            if sig.suffix in SIGNATURE_SUFFIXES:
                shutil.copyfile(sig, self.db_dir / sig.name)

    def _own(self, *paths: Path) -> None:
        if not _runs_as_clamav():
            return
        user = pwd.getpwnam(OS_USER)
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)


def _runs_as_clamav() -> bool:
    """Root drops to ``clamav`` when Debian's package created that user."""
    if os.geteuid() != 0:
        return False
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        return False
    return True
